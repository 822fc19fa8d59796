"""Embedded targets: small real servers a profile can test against without any setup.

Each target is two modules: the server, which runs in its own process (so its CPU never counts
as the console's), and its control, the parent's side that starts it and commands it:

* :mod:`.ssh_server` / :mod:`.ssh_control` - an asyncssh server running real exec and PTY
  sessions; faults ``restart``, ``auth_fail``, ``drop``;
* :mod:`.http_server` / :mod:`.http_control` - an aiohttp server with the seeds' routes, a real
  circuit breaker and a bounded queue; fault switches ``faults``.

Both are started and spoken to the one way every Python child of the console is
(:mod:`console.children`): an announcement line, then JSON-line commands on stdin. Session kinds
import the control modules only, never a server's code.
"""
