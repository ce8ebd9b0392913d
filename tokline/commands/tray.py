"""``tokline tray``: today's spend (or the binding quota) as a system-tray icon with a menu.

The icon follows the logs the way ``tokline watch`` does, in this process: inotify on
the log directories (and on the state directory, for snapshots others write), a burst
of writes coalesced into one refresh, tokline.commands.watch's Emitter deciding when the
view reads differently, and, like watch, it is the resident refresher while it runs
(tokline/surfaces/resident.py: refreshes as the logs change, marks the status current
every half refresh interval, so prompts start no refresh).  Between wakes the process
sleeps in select(); it also wakes at each minute's start for what changes with time
alone (the block's time left, a reset, the stale note).  The desktop side is pystray
(the ``tray`` extra): on Linux its GTK backend (a Gtk.StatusIcon, XEmbed, which re-docks
when a new tray host appears) or AppIndicator where that is installed; on macOS an
NSStatusItem.  ``--install``/``--uninstall`` manage the autostart entry.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from tokline.accounting.pricing import price_book
from tokline.commands.watch import QUIET_S, Emitter, log_roots
from tokline.config import Config, load
from tokline.errors import ToklineError
from tokline.ledger.store import Ledger
from tokline.prompt import statefiles
from tokline.prompt.template import TemplateError
from tokline.prompt.uptodate import ledger_path
from tokline.surfaces import inotify, tray
from tokline.surfaces.resident import Resident

EXTRA = "pip install 'tokline[tray]'"
GTK_BUILD = ("on Debian and Ubuntu first: sudo apt install pkg-config "
             "libgirepository1.0-dev libcairo2-dev gir1.2-gtk-3.0 python3-dev")
MINUTE_S = 60.0
POLL_S = 5.0  # where inotify is missing, the logs are looked at this often (as watch's)
DEFAULT_SIZE = {"darwin": 22, "win32": 32}  # icon pixels where the host does not say


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline tray", description=__doc__.split("\n")[0])
    parser.add_argument("--show", choices=("cost", "quota"),
                        help="the icon's text: today's spend or the binding quota window's "
                             "percentage (default: [tray] show in config.toml, else cost)")
    parser.add_argument("--size", type=int, metavar="PIXELS",
                        help="draw the icon this large where the tray does not say its size")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--install", action="store_true",
                      help="start the tray at login (XDG autostart; a LaunchAgent on macOS)")
    what.add_argument("--uninstall", action="store_true", help="remove the autostart entry")
    args = parser.parse_args(argv)
    if args.install or args.uninstall:
        extra = ["--show", args.show] if args.show else []
        extra += ["--size", str(args.size)] if args.size else []
        return install(sys.platform, dict(os.environ), tray.tokline_argv("tray", *extra),
                       remove=args.uninstall)

    cfg = load()
    pystray = load_backend(sys.platform, os.environ)
    app = TrayApp(pystray, cfg, args.show or cfg.tray_show, args.size)
    return app.run()


# -- autostart --------------------------------------------------------------------------


def install(platform: str, env: dict[str, str], argv: list[str], remove: bool = False) -> int:
    path, content = tray.autostart(platform, env, argv)
    try:
        with open(path, "rb") as fh:
            present: bytes | None = fh.read()
    except (FileNotFoundError, NotADirectoryError):  # (the latter: written, it fails)
        present = None
    except OSError as exc:
        raise ToklineError(f"cannot read {path}: {exc.strerror}") from None
    if remove:
        if present is None:
            print(f"tokline tray: not installed (no {path})")
            return 0
        try:
            os.unlink(path)
        except OSError as exc:
            raise ToklineError(f"cannot remove {path}: {exc.strerror}") from None
        print(f"tokline tray: autostart removed ({path})")
        return 0
    if present == content:
        print(f"tokline tray: already starts at login ({path})")
        return 0
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except OSError as exc:
        raise ToklineError(f"cannot write {path}: {exc.strerror}") from None
    verb = "updated" if present is not None else "installed"
    print(f"tokline tray: autostart {verb}, it starts at your next login ({path})")
    return 0


# -- the desktop side -------------------------------------------------------------------


def load_backend(platform: str, env: Any) -> Any:
    """pystray with a backend that has menus, or a one-line error saying what to
    install or set.  pystray's plain Xorg backend has no menu: on Linux PyGObject (GTK 3)
    is required."""
    freedesktop = platform not in ("darwin", "win32")
    if freedesktop and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise ToklineError("tray: no display (DISPLAY and WAYLAND_DISPLAY are unset): run "
                           "it in your desktop session, or `tokline tray --install` to "
                           "start it at login")
    try:
        import PIL  # noqa: F401, PLC0415 - the tray extra
    except ImportError:
        raise ToklineError(f"tray: Pillow is missing: {EXTRA}") from None
    if freedesktop:
        try:
            import gi  # noqa: PLC0415 - PyGObject, the tray extra's on Linux

            gi.require_version("Gtk", "3.0")
        except ImportError:
            raise ToklineError(f"tray: PyGObject (GTK 3) is missing, which the tray's "
                               f"menu needs: {EXTRA} ({GTK_BUILD})") from None
        except ValueError:
            raise ToklineError("tray: GTK 3's introspection data is missing: install "
                               "gir1.2-gtk-3.0 (Debian, Ubuntu) or gtk3 (Fedora, "
                               "Arch)") from None
        indicator = _has_appindicator(gi)
        # pystray tries AppIndicator first and fails outright (a ValueError) where GI has
        # no AppIndicator: the backend is chosen here and named to it
        os.environ["PYSTRAY_BACKEND"] = choose_backend(
            env, indicator, indicator and _sni_watcher())
    try:
        import pystray  # noqa: PLC0415 - the tray extra
    except ImportError as exc:
        if exc.name == "pystray":  # not installed (an error inside pystray names another)
            raise ToklineError(f"tray: pystray is missing: {EXTRA}") from None
        raise ToklineError(f"tray: no usable tray backend ({exc}); check that the "
                           f"display can be opened") from None
    except Exception as exc:  # Xlib's display errors, a GTK that cannot start
        raise ToklineError(f"tray: cannot start a tray backend: {exc}") from None
    if not pystray.Icon.HAS_MENU:
        raise ToklineError(f"tray: pystray chose its {pystray.Icon.__module__} backend, "
                           f"which has no menu: {EXTRA} ({GTK_BUILD})")
    return pystray


def choose_backend(env: Any, appindicator: bool, sni_watcher: bool) -> str:
    """pystray's backend on Linux: ``$PYSTRAY_BACKEND`` when set; AppIndicator (a
    StatusNotifierItem) where its GI bindings are installed and a StatusNotifier host
    runs or there is no X11 at all (Wayland: waybar, KDE); else GTK's XEmbed status icon,
    which every X11 tray hosts (and GNOME's AppIndicator extension, KDE's xembed proxy)."""
    if env.get("PYSTRAY_BACKEND"):
        return str(env["PYSTRAY_BACKEND"])
    if appindicator and (sni_watcher or not env.get("DISPLAY")):
        return "appindicator"
    if not env.get("DISPLAY"):
        raise ToklineError("tray: on Wayland without X11 the tray is a StatusNotifierItem, "
                           "which needs AppIndicator's GI bindings: install "
                           "gir1.2-ayatanaappindicator3-0.1 (Debian, Ubuntu) or "
                           "libayatana-appindicator-gtk3 (Fedora, Arch)")
    return "gtk"


def _has_appindicator(gi: Any) -> bool:
    for name in ("AyatanaAppIndicator3", "AppIndicator3"):
        try:
            gi.require_version(name, "0.1")
            return True
        except ValueError:
            continue
    return False


def _sni_watcher() -> bool:
    """A StatusNotifier host is on the session bus (KDE, waybar, GNOME's extension)."""
    try:
        from gi.repository import Gio, GLib  # noqa: PLC0415 - see load_backend

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        owned = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "NameHasOwner",
                              GLib.Variant("(s)", ("org.kde.StatusNotifierWatcher",)),
                              GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE, 1000, None)
        return bool(owned.unpack()[0])
    except Exception:  # no session bus (GLib.Error), or no answer
        return False


class _NoNotifier:
    """Stands in for pystray's desktop notifier when there is no D-Bus session bus."""

    def notify(self, *args: object) -> None:
        pass

    def hide(self) -> None:
        pass


def icon_class(pystray: Any, on_signal: Any) -> Any:
    """pystray's Icon for this platform, made to run without a D-Bus session bus (its
    GTK backends connect one for notifications, which the tray never sends) and to
    stop cleanly on SIGINT, SIGTERM and SIGHUP (pystray resets SIGINT); SIGUSR1 prints
    the menu."""
    base = pystray.Icon

    class Icon(base):  # type: ignore[misc, valid-type]
        def _initialize(self) -> None:
            try:
                super()._initialize()
            except Exception as exc:  # GLib.Error from Gio.bus_get_sync
                if type(exc).__module__.split(".")[0] not in ("gi", "GLib") \
                        or getattr(self, "_running", False):
                    raise
                self._notifier = _NoNotifier()
                self._mark_ready()
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
                signal.signal(signum, on_signal)

    return Icon


class TrayApp:
    """The icon, its menu, and the thread that follows the logs."""

    def __init__(self, pystray: Any, cfg: Config, show: str, size: int | None) -> None:
        self.pystray = pystray
        self.cfg = cfg
        self.show = show
        self.size = size or DEFAULT_SIZE.get(sys.platform, 48)
        self.backend = pystray.Icon.__module__.rsplit(".", 1)[-1].lstrip("_")
        self.view: dict[str, Any] = {}
        self.drawn: tuple[str, tuple[str, str], int] | None = None
        self.model: list[tray.Entry] = []
        self.children: list[subprocess.Popen[bytes]] = []
        self.wake_r, self.wake_w = os.pipe()
        self.stopping = threading.Event()
        self.error: ToklineError | None = None
        self.scratch = tempfile.mkdtemp(prefix="tokline-tray-")
        cls = icon_class(pystray, self._on_signal)
        self.icon = cls("tokline", tray.draw("…", tray.COLOURS[None], self.size),
                        "tokline", menu=self._menu([]))
        status_icon = getattr(self.icon, "_status_icon", None)  # the GTK backend's
        if status_icon is not None:
            # draw at the size the tray asks for, not scaled down from another size
            status_icon.connect("size-changed", self._on_size)

    # -- main thread -------------------------------------------------------------------

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self._on_signal)  # (GTK's backends set them again)
        try:
            # the ledger, the config's template and the watches first: a problem with
            # them is one line, before any icon appears
            self.follower = Follower(self)
            self.icon.run(setup=self._follow)
        finally:
            self.stopping.set()
            for child in self.children:
                child.poll()
            for name in os.listdir(self.scratch):
                os.unlink(os.path.join(self.scratch, name))
            os.rmdir(self.scratch)
        if self.error is not None:
            raise self.error
        return 0

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            os.write(self.wake_w, b"q")
        self.icon.stop()

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGUSR1:
            self.print_menu()
        else:
            self.stop()

    def print_menu(self) -> None:
        """The menu as the toolkit holds it (GTK's widgets; elsewhere the model), one
        entry a line on stdout, ``-`` for a separator: what ``kill -USR1`` asks for."""
        handle = getattr(self.icon, "_menu_handle", None)
        if handle is not None and hasattr(handle, "get_children"):
            labels = [str(child.get_child().get_text()) if child.get_child() else "-"
                      for child in handle.get_children()]
        else:
            labels = [entry.label for entry in self.model]
        sys.stdout.write("".join(f"menu: {label}\n" for label in labels) + "menu.\n")
        sys.stdout.flush()

    def _on_size(self, status_icon: Any, size: int) -> bool:
        if size > 0 and size != self.size:
            self.size = size
            self._show_icon()
        return True

    def _on_action(self, action: str) -> None:
        if action == "quit":
            self.stop()
            return
        self.children = [child for child in self.children if child.poll() is None]
        command = tray.action_argv(action)
        terminal = tray.terminal_argv(command, os.environ, sys.platform)
        if terminal is None:
            print("tokline tray: no terminal found: set $TERMINAL (e.g. TERMINAL=xterm)",
                  file=sys.stderr)
            return
        if sys.platform == "darwin":
            terminal.append(tray.mac_command_file(command, self.scratch, action))
        try:
            self.children.append(subprocess.Popen(
                terminal, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
        except OSError as exc:
            print(f"tokline tray: cannot start {terminal[0]}: {exc.strerror}",
                  file=sys.stderr)

    def _menu(self, model: list[tray.Entry]) -> Any:
        pystray = self.pystray

        def item(entry: tray.Entry) -> Any:
            if entry == tray.SEPARATOR:
                return pystray.Menu.SEPARATOR
            action = entry.action
            if action is None:
                return pystray.MenuItem(entry.label, lambda icon, item: None)
            return pystray.MenuItem(entry.label, lambda icon, item: self._on_action(action),
                                    default=action == "dashboard")

        return pystray.Menu(*(item(entry) for entry in model or tray.menu({})))

    # -- any thread --------------------------------------------------------------------

    def _show_icon(self) -> None:
        text, colours = tray.icon_text(self.view, self.show), tray.icon_colours(self.view)
        drawn = (text, colours, self.size)
        if drawn != self.drawn:
            self.drawn = drawn
            self.icon.icon = tray.draw(text, colours, self.size)

    def show_view(self, view: dict[str, Any]) -> None:
        """A new view from the Emitter (the follower's thread): shown from the toolkit's
        own thread, as toolkits want (GTK's main loop; AppKit's main thread)."""
        if self.backend in ("gtk", "appindicator"):
            from gi.repository import GLib  # noqa: PLC0415 - the GTK backends' loop

            def once() -> bool:
                self._apply(view)
                return False  # (not again)

            GLib.idle_add(once)
        elif self.backend == "darwin":
            from PyObjCTools import AppHelper  # noqa: PLC0415 - pystray's on macOS

            AppHelper.callAfter(self._apply, view)
        else:
            self._apply(view)

    def _apply(self, view: dict[str, Any]) -> None:
        """Icon, tooltip and menu, each when it changed."""
        self.view = view
        self._show_icon()
        self.icon.title = tray.tooltip(view)
        status_icon = getattr(self.icon, "_status_icon", None)
        if status_icon is not None:
            status_icon.set_tooltip_text(self.icon.title)
        model = tray.menu(view)
        if model != self.model:
            self.model = model
            self.icon.menu = self._menu(model)

    # -- the follower thread -----------------------------------------------------------

    def _follow(self, icon: Any) -> None:
        icon.visible = True
        try:
            self.follower.run()
        except ToklineError as exc:
            self.error = exc
        except Exception as exc:
            self.error = ToklineError(f"tray: {type(exc).__name__}: {exc}")
        finally:
            if not self.stopping.is_set():
                self.stop()


class Follower:
    """tokline watch's way of following the logs, for the tray: the resident refresher
    (tokline/surfaces/resident.py) refreshes as they change and keeps the status current
    while they don't; the Emitter shows the snapshot when it reads differently; between
    wakes the thread sleeps in select() until a log or the state directory changes, the
    refresher's next beat or the minute's start, or the wake pipe (quit)."""

    def __init__(self, app: TrayApp) -> None:
        self.app = app
        self.env = dict(os.environ)
        self.cfg = app.cfg
        self.state = statefiles.state_dir()

        class TrayEmitter(Emitter):
            def write(self, view: dict[str, Any]) -> None:
                app.show_view(view)

        try:
            self.emit = TrayEmitter(os.path.join(self.state, statefiles.SNAPSHOT),
                                    self.cfg.template)
        except TemplateError as exc:
            raise ToklineError(f"template: {exc}") from None
        Ledger(ledger_path()).close()  # it opens (the refresher opens its own in its thread)
        self.resident = Resident(self.cfg, price_book(self.cfg.price_overrides))
        self.roots = log_roots
        self.logs = self.snapshots = None
        if inotify.available():
            self.logs, self.snapshots = inotify.Watcher(), inotify.Watcher()
            self.watch_new_roots()
            os.makedirs(self.state, mode=0o700, exist_ok=True)
            self.snapshots.add(self.state)
        self.polled = time.monotonic()

    def run(self) -> None:
        try:
            self.resident.step(changed=True)
            self.emit()
            while not self.app.stopping.is_set():
                changed, timed_out = self.wait()
                if self.app.stopping.is_set():
                    return
                if timed_out:
                    self.watch_new_roots()
                self.resident.step(changed)
                self.emit()  # a new snapshot, or the same one reading differently by now
        finally:
            self.resident.close()
            for watcher in (self.logs, self.snapshots):
                if watcher is not None:
                    watcher.close()

    def wait(self) -> tuple[bool, bool]:
        """(logs changed, nothing woke it but the time) after sleeping till a change,
        the refresher's next beat or the minute's start, or the wake pipe."""
        wake = self.app.wake_r
        timeout = self.resident.wait_s(MINUTE_S - time.time() % MINUTE_S + 0.25)
        if self.logs is None or self.snapshots is None:  # no inotify: poll as watch does
            ready = select.select([wake], [], [], min(timeout, POLL_S))[0]
            changed = time.monotonic() - self.polled >= POLL_S
            if changed:
                self.polled = time.monotonic()
            return changed, not ready
        changed, ready = self.logs.wait(timeout, [self.snapshots.fd, wake])
        while changed and wake not in ready:  # coalesce the burst
            more, extra = self.logs.wait(QUIET_S, [wake])
            ready += extra
            if not more:
                break
        if self.snapshots.fd in ready:
            self.snapshots.wait(0)  # drained: the Emitter reads the snapshot if it moved
        return changed, not changed and not ready

    def watch_new_roots(self) -> None:
        """Watch the log directories that exist now (an assistant installed after the
        tray started has none at first)."""
        if self.logs is None:
            return
        watched = set(self.logs.dirs.values())
        for root in self.roots(self.env):
            if root not in watched and os.path.isdir(root):
                self.logs.add_tree(root)
