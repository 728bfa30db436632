"""``python -m dpaudit …``: the same CLI as the ``dpaudit`` script, for ``torchrun -m dpaudit …``."""

from dpaudit.cli.main import entry

if __name__ == "__main__":
    entry()
