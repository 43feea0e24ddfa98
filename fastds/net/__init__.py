"""The only code that touches sockets and the loop clock."""
