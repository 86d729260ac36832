#!/usr/bin/env python
"""Django's command-line utility for Bosun."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from bosun.lib.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except (ConfigError, ImproperlyConfigured) as exc:
        # A wrong setting is the operator's to fix: one line naming it, no traceback.
        sys.stderr.write(f"bosun: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
