; stage2_16.asm - phase 3b, 16-bit part of stage 2 (loaded at @STAGE2_16@).
;
; 1. read the kernel (@KERNEL_SECTORS@ sectors from LBA @KERNEL_LBA@) into the
;    bounce buffer at segment 0x1000 in chunks of 64 sectors (32 KiB);
; 2. read the command-line sector (LBA @CMDLINE_LBA@) into boot_info;
; 3. collect the INT 15h E820 map (24-byte entries, the ACPI 3.0 attribute
;    preset to 1 for BIOSes that return 20 bytes; at most @E820_MAX@, the
;    kernel's capacity; the count goes to boot_info) in batches of up to
;    @E820_BATCH_BYTES@ bytes at @E820_BATCH@ (segment @E820_SEG@), each moved
;    to the table at @E820_TABLE@ (above 1 MiB) with INT 15h AH=87h;
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
    ; --- 3. E820: EBX = BIOS continuation, BP = entries kept, DI = batch bytes
    xor ebx, ebx
    xor bp, bp
    mov dword ptr [@E820_DEST_VAR@], @E820_TABLE@
e820_batch:
    mov byte ptr [@E820_MORE_VAR@], 0
    push es
    mov ax, @E820_SEG@
    mov es, ax
    xor di, di
e820_next:
    mov dword ptr es:[di + 20], 1
    mov eax, 0xe820
    mov edx, 0x534d4150
    mov ecx, 24
    int 0x15
    jc e820_flush
    cmp eax, 0x534d4150
    jne e820_flush
    mov eax, es:[di + 8]
    or eax, es:[di + 12]
    jz e820_skip
    inc bp
    add di, 24
    cmp bp, @E820_MAX@
    jae e820_flush
e820_skip:
    test ebx, ebx
    jz e820_flush
    cmp di, @E820_BATCH_BYTES@
    jb e820_next
    mov byte ptr [@E820_MORE_VAR@], 1
e820_flush:
    pop es
    test di, di
    jz e820_done
    call e820_move
    jc e820_move_fail
    movzx eax, di
    add [@E820_DEST_VAR@], eax
    cmp byte ptr [@E820_MORE_VAR@], 0
    jne e820_batch
e820_done:
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
; e820_move: INT 15h AH=87h, DI bytes from the batch buffer to [E820_DEST_VAR],
; through the 48-byte descriptor table at @MOVE_GDT@ (source at +10h, destination
; at +18h: limit FFFFh, data read/write 93h).  CF from the BIOS; DI kept.
e820_move:
    cld
    push di
    mov di, @MOVE_GDT@
    mov cx, 24
    xor ax, ax
    rep stosw
    pop di
    mov word ptr [@MOVE_GDT@ + 0x10], 0xffff
    mov dword ptr [@MOVE_GDT@ + 0x12], @E820_BATCH@
    mov byte ptr [@MOVE_GDT@ + 0x15], 0x93
    mov word ptr [@MOVE_GDT@ + 0x18], 0xffff
    mov eax, [@E820_DEST_VAR@]
    mov [@MOVE_GDT@ + 0x1a], eax
    mov byte ptr [@MOVE_GDT@ + 0x1d], 0x93
    shr eax, 24
    mov [@MOVE_GDT@ + 0x1f], al
    mov cx, di
    shr cx, 1
    mov si, @MOVE_GDT@
    mov ah, 0x87
    int 0x15
    ret
disk_fail:
    mov si, msg_disk
    jmp fail
e820_move_fail:
    mov si, msg_move
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
msg_move:
    .asciz "kmemu: INT 15h AH=87h failed (E820 table)\r\n"
