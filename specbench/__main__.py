"""Allow ``python -m specbench``; the launch command of serve-sim relies on it."""

from specbench.cli import main

if __name__ == "__main__":
    main()
