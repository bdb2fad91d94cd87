"""Every exit code `netprobe` uses, in one place (sysexits.h where one fits).

`diagnose` reads 0/1/2 as healthy/degraded/down, so argparse's own exit 2 for
bad usage is turned into 64 (see `common.Parser`).
"""

EX_OK = 0  # ok; diagnose: healthy
EX_FAIL = 1  # the thing asked for failed; diagnose: degraded
EX_DOWN = 2  # diagnose: down
EX_USAGE = 64  # bad command line or option value
EX_SOFTWARE = 70  # internal error (a bug): one line, details with -v
EX_CANTCREAT = 73  # cannot create or open the state directory or the spool
EX_NOPERM = 77  # missing privileges (ICMP socket, port below 1024)
EX_CONFIG = 78  # invalid config file: every problem is listed
EX_INTERRUPTED = 130  # Ctrl-C

DOCUMENTED = {
    EX_OK: "ok / healthy",
    EX_FAIL: "failed / degraded",
    EX_DOWN: "down (diagnose)",
    EX_USAGE: "bad usage",
    EX_SOFTWARE: "internal error",
    EX_CANTCREAT: "cannot create the state directory or spool",
    EX_NOPERM: "missing privileges",
    EX_CONFIG: "config error",
    EX_INTERRUPTED: "interrupted",
}
