"""Network faults: Stressdeck's own TCP fault proxy, modelled on Toxiproxy.

:mod:`~console.net.toxics` says what a toxic is (Toxiproxy's names, attributes, JSON),
:mod:`~console.net.proxy` runs links (a listener, upstream connections, toxics applied per chunk),
:mod:`~console.net.api` serves Toxiproxy's REST API over a set of links, and
:mod:`~console.net.kind` makes links part of a run (``[[links]]``, ``net.*`` faults, panes).

It is asyncio and not Toxiproxy itself because this machine kind has no netem and no registry
ships a Toxiproxy server; copying its model means people who know Toxiproxy know this already.
"""
