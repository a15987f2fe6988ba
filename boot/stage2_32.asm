; stage2_32.asm - phase 3c, 32-bit protected mode part (at @STAGE2_32@).
;
; Copies the kernel from the bounce buffer to @KERNEL_PA@, builds the early
; page tables and enters long mode:
;   0x1000 PML4: [0] and [273] -> 0x2000 (identity and the direct map at
;                0xffff888000000000), [511] -> 0x3000 (kernel map)
;   0x2000 PDPT: [0] -> 0x4000          0x3000 PDPT: [510] -> 0x4000
;   0x4000 PD:   512 x 2 MiB pages covering physical 0 - 1 GiB
; then CR4.PAE, CR3, EFER.LME|NXE, CR0.PG|WP and a far jump to @STAGE2_64@.
    mov ax, 0x18
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, 0x7c00
    cld
    mov esi, 0x10000
    mov edi, @KERNEL_PA@
    mov ecx, @KERNEL_DWORDS@
    rep movsd dword ptr es:[edi], dword ptr [esi]
    mov edi, 0x1000
    xor eax, eax
    mov ecx, 4096
    rep stosd
    mov dword ptr [0x1000], 0x2003
    mov dword ptr [0x1000 + 273 * 8], 0x2003
    mov dword ptr [0x1000 + 511 * 8], 0x3003
    mov dword ptr [0x2000], 0x4003
    mov dword ptr [0x3000 + 510 * 8], 0x4003
    mov edi, 0x4000
    mov eax, 0x83
    mov ecx, 512
pd_fill:
    mov [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    dec ecx
    jnz pd_fill
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x900
    wrmsr
    mov eax, cr0
    or eax, 0x80010001
    mov cr0, eax
    ljmp 0x10:@STAGE2_64@
