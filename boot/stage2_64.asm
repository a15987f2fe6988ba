; stage2_64.asm - phase 3d, the first 64-bit instructions (at @STAGE2_64@).
; This address is where kmemu moves the CPU from its 16-bit Unicorn instance
; to a 64-bit one.  Data segments, a stack, then the kernel's higher-half
; entry with %rdi = physical address of boot_info.  No absolute memory
; operands here: keystone encodes them RIP-relative (see UNICORN.md).
    mov ax, 0x18
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, 0x7c00
    mov rdi, @BOOT_INFO@
    movabs rax, @KERNEL_ENTRY@
    jmp rax
