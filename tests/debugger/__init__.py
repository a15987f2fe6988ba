"""The built-in debugger (`kmemu debug`): command parsing, the REPL, the terminal."""
