"""`dmagent shell`: one session kept open (one handshake), and the client verbs typed at a
prompt with history and completion of verbs and URIs (prompt-toolkit).

Each line is a `dmagent` command line without the `dmagent` (`get ./DevInfo/DevId`); device
options on a line are ignored, the session's are those the shell was started with.
"""

import os
import shlex

import click

from dmagent.host_tools.cli.common import device_options, err_console, fail_for, options
from dmagent.host_tools.client.errors import DmagentError

VERBS = ("info", "get", "add", "replace", "delete", "exec", "acl", "check", "tree")


class UriCompleter:
    """Completes the verb, then URIs from the tree (what this session may Get), read once."""

    def __init__(self, dev):
        self.dev = dev
        self._uris = None

    def uris(self):
        if self._uris is None:
            try:
                self._uris = list(self.dev.list(".")) or ["."]
            except DmagentError:
                self._uris = ["."]
        return self._uris

    def completions(self, line):
        """(words that complete the last word of line, its length so far)."""
        words = line.split()
        last = "" if line.endswith(" ") or not words else words[-1]
        if len(words) == 0 or (len(words) == 1 and last):
            return [v for v in VERBS + ("help", "exit") if v.startswith(last)], len(last)
        if last.startswith("-"):
            return [], 0
        return [u for u in self.uris() if u.startswith(last or ".")], len(last)


def _prompt_session(completer):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory

    from dmagent.host_tools.paths import cache_dir

    class Adapter(Completer):
        def get_completions(self, document, complete_event):
            found, length = completer.completions(document.text_before_cursor)
            for word in found:
                yield Completion(word, start_position=-length)

    history = cache_dir() / "shell-history"
    history.parent.mkdir(parents=True, exist_ok=True)
    # Lines may carry values (a secret replaced): the history is the user's alone, 0600.
    os.close(os.open(str(history), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(str(history), 0o600)
    return PromptSession(history=FileHistory(str(history)), completer=Adapter())


def run_line(group, opts, line):
    """One command line against the open session; False when the shell should end."""
    words = shlex.split(line)
    if not words:
        return True
    if words[0] in ("exit", "quit"):
        return False
    if words[0] == "help":
        words = ["--help"]
    elif words[0] not in VERBS:
        err_console.print("error: the shell takes %s (or help, exit)" % ", ".join(VERBS), markup=False)
        return True
    try:
        with group.make_context("dmagent", words, obj=opts) as ctx:
            group.invoke(ctx)
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        exc.show()
    except SystemExit:  # a failed command already said why
        pass
    return True


@click.command("shell")
@device_options
@click.pass_context
def shell_command(click_ctx):
    """Keep one session open and type commands: history, completion of verbs and URIs."""
    from dmagent.host_tools.cli.connect import open_device
    from dmagent.host_tools.cli.main import main

    opts = options(click_ctx)
    try:
        dev = open_device(opts)
    except DmagentError as exc:
        fail_for(exc)
    opts.session = dev
    prompt = _prompt_session(UriCompleter(dev))
    err_console.print("%r: commands as for dmagent (help, exit; Ctrl-D ends)" % dev, markup=False)
    try:
        while True:
            try:
                line = prompt.prompt("dmagent> ")
            except KeyboardInterrupt:
                continue  # a line abandoned, as in any shell
            except EOFError:
                break
            if not run_line(main, opts, line):
                break
    finally:
        opts.session = None
        dev.close()
