; stage2_16.asm - phase 3b, 16-bit part of stage 2 (loaded at @STAGE2_16@).
;
; 1. read the kernel (@KERNEL_SECTORS@ sectors from LBA @KERNEL_LBA@) into the
;    bounce buffer at segment 0x1000 in chunks of 64 sectors (32 KiB);
; 2. read the command-line sector (LBA @CMDLINE_LBA@) into boot_info;
; 3. collect the INT 15h E820 map into the table at @E820_TABLE@ (segment
;    @E820_SEG@; 24-byte entries, the ACPI 3.0 attribute preset to 1 for
;    BIOSes that return 20 bytes; at most @E820_MAX@, the kernel's capacity;
;    the count goes to boot_info);
; 4. enable A20 (port 0x92), load the GDT, enter protected mode and far-jump
;    to the 32-bit part at @STAGE2_32@.
; The DAP lives at @DAP_VAR@ (scratch below the boot sector).
stage2:
    mov [@DRIVE_VAR@], dl
    mov dword ptr [@BOOT_INFO@], @BOOT_INFO_MAGIC@
    mov dword ptr [@BOOT_INFO@ + 4], 0
    movzx eax, dl
    mov dword ptr [@BOOT_INFO@ + 8], eax
    ; --- 1. kernel -> bounce buffer
    mov word ptr [@DAP_VAR@], 0x10
    mov word ptr [@DAP_VAR@ + 4], 0
    mov word ptr [@DAP_VAR@ + 6], 0x1000
    mov dword ptr [@DAP_VAR@ + 8], @KERNEL_LBA@
    mov dword ptr [@DAP_VAR@ + 12], 0
    mov cx, @KERNEL_SECTORS@
read_loop:
    test cx, cx
    jz read_done
    mov ax, cx
    cmp ax, 64
    jbe chunk_ok
    mov ax, 64
chunk_ok:
    mov [@DAP_VAR@ + 2], ax
    push cx
    push ax
    mov si, @DAP_VAR@
    mov ah, 0x42
    mov dl, [@DRIVE_VAR@]
    int 0x13
    pop ax
    pop cx
    jc disk_fail
    sub cx, ax
    movzx eax, ax
    add dword ptr [@DAP_VAR@ + 8], eax
    shl ax, 5
    add word ptr [@DAP_VAR@ + 6], ax
    jmp read_loop
read_done:
    ; --- 2. command line sector
    mov word ptr [@DAP_VAR@ + 2], 1
    mov word ptr [@DAP_VAR@ + 4], @BOOT_INFO_CMDLINE@
    mov word ptr [@DAP_VAR@ + 6], 0
    mov dword ptr [@DAP_VAR@ + 8], @CMDLINE_LBA@
    mov si, @DAP_VAR@
    mov ah, 0x42
    mov dl, [@DRIVE_VAR@]
    int 0x13
    jc disk_fail
    mov byte ptr [@BOOT_INFO_CMDLINE@ + 511], 0
    ; --- 3. E820
    push es
    mov ax, @E820_SEG@
    mov es, ax
    xor di, di
    xor ebx, ebx
    xor bp, bp
e820_next:
    mov dword ptr es:[di + 20], 1
    mov eax, 0xe820
    mov edx, 0x534d4150
    mov ecx, 24
    int 0x15
    jc e820_done
    cmp eax, 0x534d4150
    jne e820_done
    mov eax, es:[di + 8]
    or eax, es:[di + 12]
    jz e820_skip
    inc bp
    add di, 24
    cmp bp, @E820_MAX@
    jae e820_done
e820_skip:
    test ebx, ebx
    jnz e820_next
e820_done:
    pop es
    mov [@BOOT_INFO@ + 4], bp
    test bp, bp
    jz e820_fail
    ; --- 4. A20, GDT, protected mode
    cli
    in al, 0x92
    or al, 2
    and al, 0xfe
    out 0x92, al
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    ljmp 0x08:@STAGE2_32@
disk_fail:
    mov si, msg_disk
    jmp fail
e820_fail:
    mov si, msg_e820
fail:
    lodsb
    test al, al
    jz halt
    mov ah, 0x0e
    mov bx, 7
    int 0x10
    jmp fail
halt:
    cli
    hlt
    jmp halt
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
gdt_desc:
    .short 31
    .long gdt
msg_disk:
    .asciz "kmemu: disk read error (kernel)\r\n"
msg_e820:
    .asciz "kmemu: no E820 memory map\r\n"
