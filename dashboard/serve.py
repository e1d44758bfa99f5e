"""`python -m dashboard.serve [streamlit flags]`: start the dashboard, but never open to the network
without a password (what `make run` runs).

Streamlit's own HTTP endpoints (file uploads, media) answer before any page script runs, so the
check must come before the server starts: the address is resolved the way `streamlit run` resolves
it (config.toml files, STREAMLIT_SERVER_ADDRESS, --server.address), and a non-loopback address
without PLATE_STUDIO_PASSWORD (or a password in secrets.toml) is refused with exit code 2.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"


def address_flag(args: list[str]) -> str | None:
    """The value of --server.address in streamlit flags (either `--flag value` or `--flag=value`)."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--server.address" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--server.address="):
            value = arg.split("=", 1)[1]
    return value


def configured_address(args: list[str]) -> str | None:
    """server.address as `streamlit run` with these flags would use it: the flag, else the
    STREAMLIT_SERVER_ADDRESS variable (which Streamlit's command line turns into that flag), else
    the config.toml files."""
    from streamlit import config

    flag = address_flag(args)
    if flag is None:
        flag = os.environ.get("STREAMLIT_SERVER_ADDRESS") or None
    config.get_config_options(force_reparse=True, options_from_flags={"server.address": flag} if flag is not None else {})
    return config.get_option("server.address")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from dashboard.common import configured_password, exposure_problem

    problem = exposure_problem(configured_address(args), configured_password())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP), *args])
    return 0  # not reached: the process is streamlit now


if __name__ == "__main__":
    raise SystemExit(main())
