"""Faults and bad input, tried as an adversary would, with real subprocesses, real signals and a real full
disk (a small tmpfs, where this machine lets the tests mount one). Each promise of README's "What survives
what" has its test here or in test_sweeps.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sparsebench import cli
from sparsebench.claims import cli as claims_cli
from sparsebench.claims.catalogue import load_catalogue
from sparsebench.claims.cli import planned_records
from sparsebench.claims.plan import plan
from sparsebench.data import load_splits
from sparsebench.errors import DataError
from sparsebench.report import cli as report_cli
from sparsebench.runner import run, run_dir_for
from tests.conftest import MNIST, TINY, call_command

EMBEDDED = Path(__file__).resolve().parents[1] / "sparsebench" / "data" / "embedded"


def command(module: str, *args: str, timeout: int = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def one_line(stderr: str) -> str:
    """The single line a refused command prints; fails the test on a traceback or several lines."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-3000:]
    return lines[0]


def result(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*/result.json"))]


# --- records -----------------------------------------------------------------------------------------------------

def test_a_damaged_completed_record_is_not_trusted_and_the_run_is_done_again(make_config):
    cfg = make_config()
    assert run(cfg).status == "completed"
    folder = run_dir_for(cfg)
    folder.result_path.write_text('{"status": "completed"}')
    assert folder.status() is None  # not a record: never finished, as far as anyone is concerned
    again = run(cfg)
    assert again.status == "completed"
    assert folder.checked_result()[0].metrics["test"]["accuracy"] > 0


def test_a_record_moved_to_another_run_folder_does_not_count(make_config):
    a, b = make_config(), make_config("seed=1")
    run(a)
    target = run_dir_for(b)
    target.path.mkdir(parents=True)
    shutil.copy(run_dir_for(a).result_path, target.result_path)
    record, problem = target.checked_result()
    assert record is None and "run id" in problem


def test_the_claims_report_names_the_planned_records_it_could_not_use(tmp_path):
    results = tmp_path / "results"
    the_plan = plan([load_catalogue()["D4"]], "smoke", [f"results_dir={results}"])
    job = the_plan.all_jobs()[0]
    folder = results / job.experiment / job.run_id
    folder.mkdir(parents=True)
    (folder / "result.json").write_text('{"status": "completed"}')
    df, unused = planned_records(results, the_plan)
    assert df.empty and len(unused) == 1
    assert unused[0].path == folder / "result.json" and "not a valid record" in unused[0].reason


# --- which data a run ran on -------------------------------------------------------------------------------------

def _copy_embedded(target: Path, changed_label: int | None = None) -> Path:
    """The embedded data set's files, decompressed and compressed again (other bytes on disk, the same
    content), with the training label at ``changed_label`` moved by one if given."""
    import gzip

    target.mkdir(parents=True)
    for path in EMBEDDED.glob("*.gz"):
        data = bytearray(gzip.decompress(path.read_bytes()))
        if changed_label is not None and path.name.startswith("train-labels"):
            data[8 + changed_label] = (data[8 + changed_label] + 1) % 10
        (target / path.name).write_bytes(gzip.compress(bytes(data), compresslevel=1))
    return target


def test_the_same_config_on_other_data_is_another_run(make_config, tmp_path):
    copy = _copy_embedded(tmp_path / "copy")
    assert run_dir_for(make_config(f"dataset.root={copy}")).path.name == run_dir_for(make_config()).path.name
    # Data of one's own (no expected digest or counts): two sets that differ in one label are two runs.
    own = ["dataset=fashion_mnist", "dataset.download=false", "dataset.train_count=null", "dataset.test_count=null",
           "dataset.mean=[0.1307]", "dataset.std=[0.3081]"]
    first = make_config(*own, f"dataset.root={_copy_embedded(tmp_path / 'a', changed_label=0)}")
    second = make_config(*own, f"dataset.root={_copy_embedded(tmp_path / 'b', changed_label=1)}")
    assert run_dir_for(first).path.name != run_dir_for(second).path.name
    # A known data set's name on changed files: refused, naming what is wrong.
    with pytest.raises(DataError, match="has the right structure but not the expected content"):
        load_splits(make_config(f"dataset.root={tmp_path / 'a'}").dataset, torch.device("cpu"))
    # The embedded files under another data set's name: named as what they are.
    with pytest.raises(DataError, match="holds the data set 'embedded'"):
        load_splits(make_config(*own, f"dataset.root={copy}").dataset, torch.device("cpu"))


@pytest.mark.parametrize("dataset", ["fashion_mnist", "embedded"])
def test_files_of_another_data_set_are_refused_in_one_line(tmp_path, capsys, dataset):
    # The embedded set names each file's checksum: MNIST's files fail them, and were once called damaged,
    # with the advice to delete them.
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST files not found in {MNIST}")
    status = call_command(cli.main, f"dataset={dataset}", f"dataset.root={MNIST}", "train.epochs=1",
                          f"results_dir={tmp_path}", "progress=off")
    stderr = capsys.readouterr().err
    assert status != 0 and "delete" not in stderr
    line = [line for line in stderr.splitlines() if "holds the data set" in line]
    assert line and "'mnist'" in line[0] and f"not '{dataset}'" in line[0], stderr[-2000:]
    assert not result(tmp_path)


# --- faults of the machine ---------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 400 kB, remountable larger; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.system
def test_a_full_disk_is_one_line_and_leaves_the_run_resumable(small_disk, tmp_path):
    args = [*TINY, "model.hidden=[256,256]", "train.epochs=2", f"results_dir={small_disk}"]
    done = command("sparsebench", *args)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "disk full" in line]
    assert "needed" in line and "bytes in " + str(small_disk) in line and "run the same command again" in line
    assert "Traceback" not in done.stderr and "unexpected pos" not in done.stderr
    assert not result(small_disk)  # neither completed nor failed: nothing recorded
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = command("sparsebench", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r["status"] for r in result(small_disk)] == ["completed"]


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys):
    for folder in ("/etc/hostname/x", "/proc/version/results"):
        status = call_command(cli.main, *TINY, f"results_dir={folder}")
        assert status == 2 and "cannot be written" in one_line(capsys.readouterr().err)
    status = call_command(claims_cli.main, "profile=smoke", "claims=D4", f"results_dir={tmp_path}",
                          "out=/etc/hostname/x")
    assert status == 2 and "out=/etc/hostname/x cannot be written" in one_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())
    status = call_command(report_cli.main, f"results_dir={Path(__file__).parent / 'report'}", "out=/etc/hostname/x")
    assert status == 2 and "error: out=/etc/hostname/x cannot be written" in one_line(capsys.readouterr().err)


def _interrupt_once_running(args: list[str], results: Path, module: str = "sparsebench") -> subprocess.CompletedProcess:
    """Start the command, wait until a run has written its run.log (training under way), press Ctrl-C."""
    # As a terminal's Ctrl-C finds it: SIGINT with its default disposition (a test session started in the
    # background, `cmd &` in a script, passes SIGINT on ignored), sent to the command's whole process group,
    # its worker processes included.
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list(results.glob("*/*/run.log")):
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.system
@pytest.mark.parametrize("how", ["run", "sweep", "claims"])
def test_ctrl_c_says_how_to_resume_and_the_rerun_completes(tmp_path, how):
    results = tmp_path / "results"
    # Long enough that Ctrl-C, a second after the run starts, lands in training on a quiet machine too (12
    # epochs take 0.3 s there: the run had ended, and Ctrl-C met the interpreter's exit).
    long = [*TINY, "dataset.train_subset=4000", "train.epochs=200", f"results_dir={results}"]
    if how == "run":
        args, module = long, "sparsebench"
    elif how == "sweep":
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install 'sparsebench[launchers]'")
        args, module = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *long, "seed=0,1"], "sparsebench"
    else:
        args = ["profile=smoke", "claims=D4", "train.epochs=12", "dataset.train_subset=2000", "model.hidden=[64,64]",
                f"results_dir={results}", "jobs=2"]
        module = "sparsebench.claims.cli"
    done = _interrupt_once_running(args, results, module)
    assert done.returncode == 130, done.stderr[-3000:]
    assert "interrupted; run the same command" in done.stderr
    assert "Traceback" not in done.stderr and "leaked semaphore" not in done.stderr
    assert not [r for r in result(results) if r["status"] == "failed"]  # an interrupt is no failure of a run
    if how == "run":
        again = command(module, *args)
        assert again.returncode == 0 and [r["status"] for r in result(results)] == ["completed"]


# --- checked before any work -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["regularizer=dropconnect", "regularizer.mask=sample", "regularizer.max_mask_bytes=0"],
     "regularizer.max_mask_bytes=0 is not allowed"),
    (["train.lr=inf"], "train.lr=inf is not allowed"),
    (["seed=99999999999999999999999"], "seed"),
    (["dataset.train_subset=100000"], "dataset.train_subset=100000 is not allowed: embedded has 5000 training images"),
    (["dataset.val_size=500", "dataset.train_subset=4600"], "embedded has 4500 training images after val_size=500"),
    (["+regularizer.foo=1"], "regularizer.foo=1 is not allowed: regularizer none has no such setting"),
    (["train.select=best_test"], "eval.best_test=true"),
])
def test_bad_values_are_refused_in_one_line_before_any_work(tmp_path, args, says, capsys):
    status = call_command(cli.main, "progress=off", f"results_dir={tmp_path}", *args)
    assert status == 2 and says in one_line(capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_printing_a_config_checks_it_first(tmp_path, capsys):
    status = call_command(cli.main, "--cfg", "job", "regularizer=dropout", "regularizer.p=1.5")
    done = capsys.readouterr()
    assert status == 2 and "regularizer.p=1.5 is not allowed" in one_line(done.err) and not done.out
    status = call_command(cli.main, "--cfg", "job", "regularizer=dropout")
    assert status == 0 and "p: 0.5" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_refused_for_the_whole_sweep(tmp_path, capsys):
    status = call_command(cli.main, "-m", "device=cpu,cuda", *TINY[:-1], f"results_dir={tmp_path}")
    assert status == 2 and "device='cuda' is not allowed" in one_line(capsys.readouterr().err)
    assert not result(tmp_path)


# --- messages ----------------------------------------------------------------------------------------------------

def test_help_lists_what_a_user_can_choose(capsys):
    status, out = call_command(cli.main, "--help"), capsys.readouterr().out
    assert status == 0 and "powered by Hydra" not in out
    assert "regularizer" in out and "dropconnect" in out and "hydra/launcher" in out
    assert "schema/" not in out and "claims " not in out.split("Config groups")[1].split("\n\n")[0]
    status = call_command(claims_cli.main, "--help")
    assert status == 0 and capsys.readouterr().out.count("run what the claims need") == 1


def test_a_mistyped_claims_setting_names_both_kinds_of_setting(tmp_path, capsys):
    status = call_command(claims_cli.main, "clams=D1", f"results_dir={tmp_path}")
    line = one_line(capsys.readouterr().err)
    assert status == 2 and "'clams' is neither a setting of sparsebench-claims" in line and "+clams" not in line
    call_command(cli.main, "regularizer.foo=1", f"results_dir={tmp_path}")
    unknown = capsys.readouterr().err
    assert "regularizer.foo is not a setting" in one_line(unknown) and "+regularizer.foo" not in unknown


@pytest.mark.system
def test_a_run_without_a_terminal_logs_one_line_per_epoch(tmp_path):
    done = command("sparsebench", *TINY, "train.epochs=3", f"results_dir={tmp_path}")
    assert done.returncode == 0
    lines = [line for line in done.stderr.splitlines() if "] - epoch " in line]
    assert [line.split("] - ")[1].split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    [log] = tmp_path.glob("*/*/run.log")
    assert log.read_text().count(" epoch ") >= 3


@pytest.mark.system
def test_an_interrupt_that_escaped_an_exec_still_exits_with_130(tmp_path):
    # dataclasses build methods with exec() of a string; a Ctrl-C landing there (as in torch's lazy imports)
    # made CPython end the process by SIGINT (-2) after the command had handled it and asked for 130.
    # Run with python -m, as the tests run the commands: CPython checks for that interrupt only then.
    (tmp_path / "command.py").write_text("import sys\nfrom sparsebench.errors import interrupted\n"
                      "try:\n    exec('raise KeyboardInterrupt')\n"
                      "except KeyboardInterrupt:\n    sys.exit(interrupted('command', 'run it again'))\n")
    done = subprocess.run([sys.executable, "-m", "command"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "command: interrupted; run it again"


@pytest.mark.system
@pytest.mark.parametrize("raised, printed", [("KeyboardInterrupt", False), ("ValueError", True)])
def test_ctrl_c_inside_a_callback_is_delivered_again_without_a_traceback(tmp_path, raised, printed):
    # Ctrl-C sent to a sweep's process group once landed in a worker's weakref callback during an import:
    # CPython cannot raise there, printed "Exception ignored ... KeyboardInterrupt" and lost the interrupt.
    (tmp_path / "command.py").write_text(
        "import time, weakref\nimport sparsebench\n"
        f"class Thing: pass\nthing = Thing()\ndef callback(_): raise {raised}\nref = weakref.ref(thing, callback)\n"
        "try:\n    del thing\n    time.sleep(5)\n    print('slept')\n"
        "except KeyboardInterrupt:\n    print('interrupted')\n")
    done = subprocess.run([sys.executable, "-m", "command"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    if printed:  # any other exception Python cannot raise is reported as before, and nothing is sent
        assert done.stdout == "slept\n" and "Exception ignored" in done.stderr and "ValueError" in done.stderr
    else:  # the interrupt reaches the main thread, even asleep, and nothing is printed for it
        assert done.stdout == "interrupted\n" and done.stderr == ""
