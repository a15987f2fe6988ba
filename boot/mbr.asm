; mbr.asm - phase 3a: the boot sector (16-bit real mode, loaded at 0x7c00).
;
; Assembled by keystone (emu/build/bootstub.py); NAME placeholders in at-signs are
; substituted with numbers first.  It checks for the INT 13h extensions,
; reads stage 2 (@STAGE2_SECTORS@ sectors from LBA @STAGE2_LBA@) to 0x8000
; and jumps there with DL still holding the boot drive.  On any error it
; prints a message through INT 10h and halts.
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov [@DRIVE_VAR@], dl
    mov ah, 0x41
    mov bx, 0x55aa
    int 0x13
    jc no_ext
    cmp bx, 0xaa55
    jne no_ext
    test cx, 1
    jz no_ext
    mov si, dap
    mov ah, 0x42
    mov dl, [@DRIVE_VAR@]
    int 0x13
    jc disk_error
    mov dl, [@DRIVE_VAR@]
    ljmp 0:@STAGE2_16@
no_ext:
    mov si, msg_noext
    jmp fail
disk_error:
    mov si, msg_disk
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
dap:
    .byte 0x10, 0
    .short @STAGE2_SECTORS@
    .short @STAGE2_16@, 0
    .quad @STAGE2_LBA@
msg_noext:
    .asciz "kmemu: no INT 13h extensions\r\n"
msg_disk:
    .asciz "kmemu: disk read error (stage 2)\r\n"
