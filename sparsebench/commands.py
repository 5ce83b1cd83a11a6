"""What the three commands (``sparsebench``, ``sparsebench-claims``, ``sparsebench-report``) share: a
command line of Hydra overrides, read by Hydra's own parser, and one way of ending.

Exit status, the same for all three:

  0    done
  1    work failed: a run failed (diverged, over its memory budget), a figure could not be drawn
  2    bad input, nothing done for it: a value, a config file, missing data the user must provide, a
       folder that cannot be written; one line ``<command>: error: ...`` says what and how to fix it
  130  interrupted (Ctrl-C); a line says how to go on
  141  the reader of the output went away (``| head``): quietly, as a shell reports a process ended
       by SIGPIPE
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import gc
import importlib.resources
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, OverrideType
from hydra.errors import HydraException, OverrideParseException
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from sparsebench.errors import SparsebenchError, interrupted

FAILED, BAD_INPUT, INTERRUPTED, CLOSED_PIPE = 1, 2, 130, 141
# What composing and validating a config raises for a bad value or a bad config file.
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, yaml.YAMLError)
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
_CONF = importlib.resources.files("sparsebench.conf")  # the configs this package ships


def run_command(prog: str, body: Callable[[], int], resume: str) -> int:
    """``body()``'s exit status, or the status of what stopped it, said in one line on stderr:
    bad input (2), Ctrl-C (130, with ``resume``: how to go on), a closed output pipe (141, quietly)."""
    # At exit the interpreter's last garbage collections walk every object the command made (a plan's
    # configs, torch's modules): 0.6 s of a 3 s claims command. They are set aside instead; what that gives
    # up, finalising objects left in reference cycles, nothing here needs: every file is closed by a with
    # block or written atomically, and logging flushes its handlers at exit.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        status = body()
        sys.stdout.flush()  # a reader that went away shows here, where it is handled, not at exit
        return status
    except BrokenPipeError:
        _stdout_to_devnull()
        return CLOSED_PIPE
    except KeyboardInterrupt:
        return interrupted(prog, resume)
    except (SparsebenchError, *COMPOSE_ERRORS) as error:
        return refuse(prog, explain(error))


def refuse(prog: str, message: str) -> int:
    """Print the one line of a refused command; its exit status (2)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return BAD_INPUT


def _stdout_to_devnull() -> None:
    # Python flushes stdout once more at exit and would report the closed pipe there.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (captured by a test)
        pass


# --- the command line --------------------------------------------------------------------------------------------

def help_text(doc: str) -> str:
    """A command's docstring as its ``--help`` prints it: without the reST markup (``code``, `code`)
    written for the API docs."""
    return doc.replace("``", "").replace("`", "").strip() + "\n"


def printed_help_or_version(argv: list[str], doc: str, prog: str) -> bool:
    """Print ``--help`` (``doc``) or ``--version`` when ``argv`` asks for either, and say whether it did: the
    answer of ``sparsebench-claims`` and ``sparsebench-report``, whose other arguments are overrides."""
    if any(a in ("-h", "--help") for a in argv):
        print(help_text(doc), end="")
        return True
    if "--version" in argv:
        print(version_text(prog))
        return True
    return False


def version_text(prog: str) -> str:
    """``--version``: the command's version, and those of what its numbers depend on (read from the
    installed packages' metadata, so that asking imports none of them)."""
    from importlib.metadata import PackageNotFoundError, version

    from sparsebench import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    python = ".".join(map(str, sys.version_info[:3]))
    return (f"{prog} {__version__} (Python {python}, torch {installed('torch')}, "
            f"hydra-core {installed('hydra-core')})")


def parse_overrides(argv: Iterable[str]) -> list[Override]:
    """The command line as Hydra reads it (quotes, lists, sweeps): refused in one line if Hydra cannot."""
    try:
        return OverridesParser.create().parse_overrides(list(argv))
    except OverrideParseException as error:
        raise SparsebenchError(explain(error)) from None


@functools.cache
def run_groups() -> dict[str, bool]:
    """The config groups a run composes (conf/config.yaml's defaults list), each with whether it is chosen by
    default (false: null unless an experiment or a profile chooses it)."""
    defaults = yaml.safe_load((_CONF / "config.yaml").read_text())["defaults"]
    return {group: choice is not None for entry in defaults if isinstance(entry, dict)
            for group, choice in entry.items() if " " not in group and "/" not in group and (_CONF / group).is_dir()}


def refuse_null_groups(overrides: list[Override]) -> None:
    """Refuse, in one line, a config group of the run set to null (``dataset=null``, ``+tune=null``, a sweep
    ``dataset=mnist,null``), which Hydra stops on with a traceback rather than an error of its own."""
    for override in overrides:
        key = override.key_or_group
        if key not in run_groups() or override.package or override.type == OverrideType.DEL:
            continue
        value = override.value()
        values = value.list if isinstance(value, ChoiceSweep) else [value]
        if not any(v is None for v in values):
            continue
        options = _options(key)
        fix = f"leave {key} out for its default" if run_groups()[key] else \
            f"leave {key} out to keep what the experiment or profile chooses (none, by default)"
        raise SparsebenchError(f"{override.input_line} is not allowed: {key} is a config group and takes one of its "
                               f"options ({', '.join(options) or 'none found'}; files in conf/{key}/), not null; {fix}")


def split_settings(overrides: list[Override], own: Iterable[str], prog: str) -> tuple[dict[str, Any], list[Override]]:
    """(the command's own settings given, key -> value as Hydra typed it; the other overrides)."""
    own = set(own)
    settings, rest = {}, []
    for override in overrides:
        key = override.key_or_group
        if key not in own:
            rest.append(override)
            continue
        if override.type != OverrideType.CHANGE or override.package:
            raise SparsebenchError(f"{override.input_line}: {key} is a setting of {prog}; write {key}=VALUE")
        settings[key] = override.value()
    return settings, rest


def text_setting(key: str, value: Any, default: str = "") -> str:
    """A setting that names something (a folder, a launcher): ``default`` when not given."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SparsebenchError(f"{key}={value!r} is not allowed: give one name or path (quote it if it holds "
                               f"spaces, commas or brackets: {key}='my results (2)')")
    return str(value)


def quote(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar (any path, spaces and quotes included)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- errors in one line ------------------------------------------------------------------------------------------

def _options(group: str) -> list[str]:
    """A config group's options as Hydra finds them (a user's folders too), or before Hydra starts, in conf/."""
    try:
        if GlobalHydra.instance().is_initialized():
            return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
        return sorted(f.name.removesuffix(".yaml") for f in (_CONF / group).iterdir() if f.name.endswith(".yaml"))
    except Exception:  # noqa: BLE001 - only used to enrich a message
        return []


def _cause(error: BaseException, kind: type, has: str) -> Any:
    """The first error of type ``kind`` with attribute ``has`` in ``error``'s chain of causes."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, kind) and getattr(cause, has, None):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _yaml_line(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark
    where = (f" ({error.context} from line {error.context_mark.line + 1})"
             if error.context and error.context_mark else "")
    fix = ("a config file holds plain values: tags that would build Python objects are refused, never run"
           if isinstance(error, yaml.constructor.ConstructorError) else "fix the YAML syntax there")
    return f"{mark.name}, line {mark.line + 1}: {error.problem}{where}; {fix}"


def explain(error: BaseException) -> str:
    """One line saying what is wrong with a command line or a config file, and how to fix it."""
    if isinstance(error, SparsebenchError):
        return str(error)
    marked = _cause(error, yaml.MarkedYAMLError, "problem_mark")
    if marked is not None:
        return _yaml_line(marked)
    cause = _cause(error, OmegaConfBaseException, "full_key")
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        key = cause.full_key
        schema = getattr(cause, "object_type", None)
        known = ", ".join(f.name for f in dataclasses.fields(schema)) if dataclasses.is_dataclass(schema) else ""
        parent = key.rpartition(".")[0]
        where = f" of {parent}" if parent else ""
        return (f"{key} is not a setting{where}: " + (f"the settings are {known}; " if known else "")
                + "check the spelling")
    if isinstance(cause, ValidationError):
        detail = str(cause).splitlines()[0]
        converted = re.match(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", detail)
        if converted:
            return f"{cause.full_key}={converted[1]!r} is not allowed: expected a {converted[2].lower()} value"
        return f"{cause.full_key} is not allowed: {detail}"
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = ", ".join(_options(group)) or "none found"
        return (f"{group}={option} is not an option of {group}: choose one of {options} (files in conf/{group}/, "
                f"or in a folder of your own given with --config-dir)")
    if isinstance(error, OverrideParseException):
        return f"could not parse the command line: {text.splitlines()[0]} (see {GRAMMAR})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__
