"""Layer 6: the GDB remote serial protocol stub (issue 6, in progress).

``transport`` frames packets (``$data#cs``, acks, escapes, run-length
encoding); the protocol layer (one handler per packet) comes next.
"""
