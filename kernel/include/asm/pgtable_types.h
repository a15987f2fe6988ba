/*
 * <asm/pgtable_types.h> - x86-64 page-table entry bits and the page
 * protections passed to vmap(): PAGE_KERNEL (RW, NX), PAGE_KERNEL_RO,
 * PAGE_KERNEL_EXEC, PAGE_KERNEL_ROX.  pgprot_t wraps the bits so they cannot
 * be mixed up with an address (pgprot_val/__pgprot convert).
 */
#ifndef _ASM_X86_PGTABLE_TYPES_H
#define _ASM_X86_PGTABLE_TYPES_H
#include <linux/const.h>

#define _PAGE_BIT_PRESENT 0
#define _PAGE_BIT_RW 1
#define _PAGE_BIT_USER 2
#define _PAGE_BIT_PWT 3
#define _PAGE_BIT_PCD 4
#define _PAGE_BIT_ACCESSED 5
#define _PAGE_BIT_DIRTY 6
#define _PAGE_BIT_PSE 7
#define _PAGE_BIT_GLOBAL 8
#define _PAGE_BIT_NX 63

#define _PAGE_PRESENT (_AC(1, UL) << _PAGE_BIT_PRESENT)
#define _PAGE_RW (_AC(1, UL) << _PAGE_BIT_RW)
#define _PAGE_USER (_AC(1, UL) << _PAGE_BIT_USER)
#define _PAGE_PWT (_AC(1, UL) << _PAGE_BIT_PWT)
#define _PAGE_PCD (_AC(1, UL) << _PAGE_BIT_PCD)
#define _PAGE_ACCESSED (_AC(1, UL) << _PAGE_BIT_ACCESSED)
#define _PAGE_DIRTY (_AC(1, UL) << _PAGE_BIT_DIRTY)
#define _PAGE_PSE (_AC(1, UL) << _PAGE_BIT_PSE)
#define _PAGE_GLOBAL (_AC(1, UL) << _PAGE_BIT_GLOBAL)
#define _PAGE_NX (_AC(1, UL) << _PAGE_BIT_NX)

#define __PAGE_KERNEL (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX)
#define __PAGE_KERNEL_EXEC (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL)
#define __PAGE_KERNEL_RO (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL | _PAGE_NX)
#define __PAGE_KERNEL_ROX (_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL)

typedef unsigned long pgprotval_t;
typedef struct pgprot {
	pgprotval_t pgprot;
} pgprot_t;

#define pgprot_val(x) ((x).pgprot)
#define __pgprot(x) ((pgprot_t){ (x) })

#define PAGE_KERNEL __pgprot(__PAGE_KERNEL)
#define PAGE_KERNEL_RO __pgprot(__PAGE_KERNEL_RO)
#define PAGE_KERNEL_EXEC __pgprot(__PAGE_KERNEL_EXEC)
#define PAGE_KERNEL_ROX __pgprot(__PAGE_KERNEL_ROX)

#endif
