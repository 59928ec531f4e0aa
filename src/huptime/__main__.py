"""`python -m huptime` is the `huptime` command."""

from huptime.cli import main

if __name__ == "__main__":
    main()
