"""The unattended agent: `daemon` (spool, publisher, reload, watchdog), `scheduler` (intervals,
splay, the heavy gate) and `sdnotify` (systemd readiness and watchdog)."""
