"""Stressdeck's console widgets: one module per pane, panel and screen.

They render :mod:`console.snapshot` objects and never touch the engine; the app
(:mod:`console.ui.app`) feeds them snapshots and turns keys into engine commands.
"""

from widgets.command_line import CommandLineScreen
from widgets.confirm import ConfirmScreen
from widgets.criteria import CriteriaPanel
from widgets.detail import SessionDetailScreen
from widgets.event_log import EventLogPanel
from widgets.faults import FaultsPanel
from widgets.footer import KeyFooter
from widgets.grid import SessionGrid
from widgets.header import RunHeader
from widgets.help import HelpScreen, KeyHelp
from widgets.lines import TextLines
from widgets.net_menu import NetMenuScreen
from widgets.quit import QuitScreen
from widgets.requests import RequestsScreen
from widgets.stats import ConsoleStatsPanel

__all__ = [
    "CommandLineScreen",
    "ConfirmScreen",
    "ConsoleStatsPanel",
    "CriteriaPanel",
    "EventLogPanel",
    "FaultsPanel",
    "HelpScreen",
    "KeyFooter",
    "KeyHelp",
    "NetMenuScreen",
    "QuitScreen",
    "RequestsScreen",
    "RunHeader",
    "SessionDetailScreen",
    "SessionGrid",
    "TextLines",
]
