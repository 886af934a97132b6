"""Run the course's notebooks in order, headless, and save each with its outputs.

    python -m python_files.run_notebooks              # every stage, the profile of this machine
    LLM_PROFILE=ci python -m python_files.run_notebooks 01 02    # only stages 01 and 02

A profile that starts from GPT-2 (`gpt2`) runs stages 05 to 07: it has no pretraining of ours.

Each notebook runs in a fresh kernel in its own folder, as when a learner opens it, and is
saved in place with its outputs: open it afterwards to read the results. A failing notebook
is saved too, with the error at the cell that failed and no outputs below it (none of an
earlier run), and the run stops there.
"""

from __future__ import annotations

import argparse
import html
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from .artifacts import REPO_ROOT, Artifacts, atomic_write_text
from .profiles import active_profile
from .qa_eval import format_table


FINE_TUNING_STAGES = ["05", "06", "07"]


def course_notebooks(stages: list[str]) -> list[Path]:
    """The notebooks of the stage folders (01_tokenizer/, ...), in course order."""
    notebooks = sorted(REPO_ROOT.glob("[0-9][0-9]_*/*.ipynb"))
    return [nb for nb in notebooks if not stages or nb.parent.name[:2] in stages]


def run_notebook(path: Path) -> None:
    """Execute the notebook at `path` and save it with its new outputs (also when a cell fails)."""
    notebook = nbformat.read(path, as_version=4)
    try:
        execute(notebook, path.parent)
    finally:
        widgets_as_text(notebook)
        atomic_write_text(path, nbformat.writes(notebook) + "\n")


def execute(notebook, folder: Path) -> None:
    """Run every cell of `notebook` in a fresh kernel started in `folder`, as a learner would."""
    clear_outputs(notebook)
    client = NotebookClient(notebook, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    client.execute(stderr=subprocess.DEVNULL)   # the kernel's own start-up warnings


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def widgets_as_text(notebook) -> None:
    """Where widgets do not run (GitHub, a notebook not yet trusted), a saved widget shows its text
    from when it was created: `0%|` for a progress bar. Give a progress bar its last line instead,
    and any other widget a sentence."""
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                output["data"]["text/plain"] = (progress_bar_line(view["model_id"], state)
                                                or "(an interactive widget: run the notebook to use it)")


def progress_bar_line(model_id: str, state: dict) -> str | None:
    """The last line of a notebook progress bar (tqdm: a label, a bar, the counts), as text."""
    children = state.get(model_id, {}).get("state", {}).get("children", [])
    parts = [state.get(child.removeprefix("IPY_MODEL_"), {}) for child in children]
    if [part.get("model_name") for part in parts] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    label, counts = (html.unescape(part["state"]["value"]).replace("\u2007", " ") for part in (parts[0], parts[2]))
    if not label.endswith("%"):
        return f"{label}{counts}"     # no total known: no bar to draw
    bar = parts[1]["state"]
    filled = round(10 * bar["value"] / bar["max"])
    return f"{label}|{'#' * filled}{' ' * (10 - filled)}|{counts}"


def clear_outputs(notebook) -> None:
    """Forget the outputs of the last run, so that cells a failure leaves unrun show nothing."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the course notebooks headless, in order.")
    parser.add_argument("stages", nargs="*", help="two-digit stage numbers (default: all)")
    args = parser.parse_args()
    profile = active_profile()
    notebooks = course_notebooks(args.stages or (FINE_TUNING_STAGES if profile.start_from else []))
    print(f"profile {profile.name}: {len(notebooks)} notebooks")
    started = time.perf_counter()
    for number, path in enumerate(notebooks, start=1):
        name = path.relative_to(REPO_ROOT).as_posix()
        print(f"[{number}/{len(notebooks)}] {name} ...", end=" ", flush=True)
        notebook_started = time.perf_counter()
        try:
            run_notebook(path)
        except CellExecutionError as error:
            print(f"failed: {error.ename}: {error.evalue}\nOpen {name} to see the cell that failed.")
            return 1
        except DeadKernelError:
            print(f"the kernel died (stopped from outside, or out of memory). {name} is saved with the "
                  f"outputs it had: run it again, alone, to see how far it gets.")
            return 1
        print(f"{time.perf_counter() - notebook_started:.0f} s")
    artifacts = Artifacts.for_profile(profile.name)
    print(f"all done in {(time.perf_counter() - started) / 60:.1f} min; artifacts in {artifacts.shown_root}/")
    if artifacts.eval_results.exists():
        results = json.loads(artifacts.eval_results.read_text(encoding="utf-8"))
        print(f"\nheld-out evaluation (07_sampling) of the {results.get('model', 'fine-tuned')} model:\n"
              f"{format_table(results['table'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
