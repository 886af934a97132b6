"""The README's figures, taken from the saved notebooks, so that they show the committed run.

    python -m python_files.readme_figures      # after python -m python_files.run_notebooks

Each figure is the image a notebook cell drew; the cell is found by a line of its code.
tests/test_readme_figures.py checks that the files in readme_materials/ are these images.
"""

from __future__ import annotations

import base64
import json

from .artifacts import REPO_ROOT, atomic_path
from .errors import CourseError

README_MATERIALS = REPO_ROOT / "readme_materials"

# figure file -> (notebook, a line of code found only in the cell that draws it)
FIGURES = {
    "compression_vs_vocab.png": ("01_tokenizer/01_bpe_tokenizer.ipynb", 'plt.title("Bigger vocabularies compress more")'),
    "document_lengths.png": ("02_pretrain_data/02_pretrain_data.ipynb", 'plt.xlabel("tokens per document (train)")'),
    "residual_gradients.png": ("03_model_pipeline/03_gpt_model.ipynb", 'plt.ylabel("mean |gradient| of its weights")'),
    "transformer_block.png": ("03_model_pipeline/03_gpt_model.ipynb", '"the block the profiles train": ("RMSNorm"'),
    "attention_heatmaps.png": ("03_model_pipeline/03_gpt_model.ipynb", 'axis.set_title(f"layer 0, head 0, {title}")'),
    "training_loop_additions.png": ("04_pretraining/04_pretraining.ipynb", 'dots.set_xlabel(f"validation loss after {LADDER_STEPS} steps (± 2 standard errors)")'),
    "pretraining_loss.png": ("04_pretraining/04_pretraining.ipynb", "figure, (loss_axis, lr_axis) = plt.subplots("),
    "sft_loss.png": ("06_sft/06_sft.ipynb", 'plt.ylabel("loss on the assistant\'s tokens")'),
    "storage_and_extraction.png": ("06_sft/06_sft.ipynb", 'axis.set_title("held-out objects, by storage and extraction"'),
    "readings.png": ("06_sft/06_sft.ipynb", "draw(readings_table)"),
    "reinforcement_reward.png": ("06_sft/06b_reinforcement.ipynb", "figure, (left, right) = plt.subplots("),
    "sampling_distributions.png": ("07_sampling/07_sampling.ipynb", 'axis.set_title(f"{name}: {int((distribution > 0).sum()):,} tokens possible"'),
}


def drawn_image(notebook: str, code_line: str) -> bytes:
    """The PNG drawn by the one cell of `notebook` whose code contains `code_line`."""
    cells = json.loads((REPO_ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    drawing = [cell for cell in cells if cell["cell_type"] == "code" and code_line in "".join(cell["source"])]
    if len(drawing) != 1:
        raise CourseError(f"{notebook} has {len(drawing)} cells with {code_line!r}, not one: update FIGURES "
                          f"in python_files/readme_figures.py.")
    images = [output["data"]["image/png"] for output in drawing[0].get("outputs", [])
              if "image/png" in output.get("data", {})]
    if len(images) != 1:
        raise CourseError(f"the cell of {notebook} with {code_line!r} shows {len(images)} images, not one: "
                          f"run the notebook first (python -m python_files.run_notebooks).")
    return base64.b64decode(images[0])


def main() -> None:
    for name, (notebook, code_line) in FIGURES.items():
        with atomic_path(README_MATERIALS / name) as temporary:
            temporary.write_bytes(drawn_image(notebook, code_line))
        print(f"readme_materials/{name} <- {notebook}")


if __name__ == "__main__":
    main()
