"""Knowledge of the kmemu kernel: page tables, guest structures, views."""
