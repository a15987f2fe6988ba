# kmemu debug --module examples/recfifo/recfifo.c --script examples/recfifo/debug.gdb
# One recfifo_push under the debugger: stop at the memcpy into the new record,
# step over it, look at the record, and see the FIFO count it after the call.
break recfifo.c:66
call recfifo_push (recfifo_global) kmemu_banner 5 GFP_KERNEL
info args
print r->len
next
print r->data[0]
print f->count
finish
print recfifo_global->count
