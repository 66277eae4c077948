"""Write the template notebooks (outputs empty) from one definition per kind.

The lung, liver and heart notebooks differ only in their task, so they come from one function:
edit it here and run ``python notebooks/build.py``; a test checks the files are up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
TASKS = {
    "lung": "lungs and lung nodules on CT (MSD Task06 layout)",
    "liver": "liver and liver tumours on CT (MSD Task03 layout)",
    "heart": "heart and left atrium on contrast CT (MSD Task02 layout)",
}


def params(code: str) -> nbformat.NotebookNode:
    cell = new_code_cell(code)
    cell.metadata["tags"] = ["parameters"]  # papermill injects CI / workshop values after it
    return cell


def task_notebook(task: str) -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(
            f"# {task.title()} segmentation: data, training, evaluation, tracking\n\n"
            f"Segment {TASKS[task]} with the MedAI Lab template (MONAI + Lightning). Runs on a "
            "CPU with the `cpu` preset in minutes on phantom data; point `data` at a real MSD "
            'folder and use `preset = "gpu"` on a GPU hub.'
        ),
        params(
            f'task = "{task}"\npreset = "cpu"  # smoke (seconds), cpu (minutes), gpu, ddp\n'
            "data = None  # None: seeded CT-like phantoms; or an MSD folder / CSV manifest\n"
            'out = "medai-runs"  # runs, checkpoints, exports, evaluation\n'
            "overrides = []  # config overrides such as trainer.max_epochs=5 or model=segresnet"
        ),
        md("## 1. Data\nThe folder training will use (phantoms are written on first use)."),
        code(
            "from pathlib import Path\n\n"
            "from medai_lab.tasks import dataset, compose\n"
            "from medai_lab.widgets import view\n\n"
            "folder = dataset(task, preset, data, overrides, out_dir=out)\n"
            "cases = sorted((folder / 'imagesTr').glob('*.nii*'))\n"
            "print(folder, len(cases), 'cases')\n"
            "labels = compose(task, preset, overrides)['task']['labels']\n"
            "view(cases[0], labels=folder / 'labelsTr' / cases[0].name, label_names=labels)"
        ),
        md(
            "## 2. Train\nTracked in MLflow (one run with config, metrics, per-case table, "
            "overlays and the exported TorchScript model)."
        ),
        code(
            "from medai_lab.tasks.runner import template\n\n"
            "train, _ = template(task)\n"
            "result = train(preset, data, overrides, out_dir=out)\n"
            "print({k: round(v, 3) for k, v in result.metrics.items() if k.startswith('dice')})\n"
            "model = result.extra['exports']['torchscript']\n"
            "run_id = result.extra.get('mlflow_run_id')\n"
            "print('model:', model, '| MLflow run:', run_id)"
        ),
        md(
            "## 3. Evaluate the exported model\nThe validation images are segmented from the "
            "TorchScript export on their own grids and scored with Dice, HD95 and NSD."
        ),
        code(
            "import shutil\n\n"
            "from medai_lab.evaluation import evaluate_dirs\n"
            "from medai_lab.inference import Predictor, predict_folder\n\n"
            "work = Path(out) / task / 'evaluation'\n"
            "images, truth, preds = work / 'images', work / 'truth', work / 'predictions'\n"
            "for f in (images, truth, preds):\n"
            "    shutil.rmtree(f, ignore_errors=True)\n"
            "    f.mkdir(parents=True)\n"
            "for case in result.extra['val_cases']:\n"
            "    name = f'{case}.nii.gz'\n"
            "    shutil.copy(result.data_dir / 'imagesTr' / name, images / name)\n"
            "    shutil.copy(result.data_dir / 'labelsTr' / name, truth / name)\n"
            "predict_folder(Predictor.load(model), images, preds, progress=False)\n"
            "table = evaluate_dirs(preds, truth, labels, out_csv=work / 'per_case.csv',\n"
            "                      progress=False)\n"
            "table[['case', 'label_name', 'dice', 'hd95', 'nsd']]"
        ),
        md("## 4. The MLflow run"),
        code(
            "from medai_lab.tracking import make_client\n\n"
            "if run_id:\n"
            "    run = make_client().get_run(run_id)\n"
            "    print(run.info.status, {k: round(v, 3) for k, v in run.data.metrics.items()\n"
            "                            if k.startswith('final/dice')})\n"
            "print('Browse runs: medai-lab lab (MLflow launcher) or mlflow ui')"
        ),
        md(
            "## 5. Predictions against truth\nWorst case first; green true positives, red false "
            "positives, blue false negatives."
        ),
        code(
            "from medai_lab.widgets import case_browser\n\n"
            "case_browser(work / 'per_case.csv', images, truth, preds, label_names=labels)"
        ),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def pacs_notebook() -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(
            "# PACS and de-identification\n\nStart a workshop PACS (Orthanc), seed it with a CT "
            "series, query it, pull a study **de-identified on the way in** (DICOM PS3.15 Basic "
            "Profile; raw files never touch the disk), and look at the result. Against a hospital "
            "PACS, replace the server part with its DICOMweb URL or AE title."
        ),
        params('out = "medai-pacs"  # PACS storage, pulled data\nseed = 0'),
        md("## 1. A workshop PACS with one CT study (a seeded phantom with patient details)"),
        code(
            "import shutil\nfrom pathlib import Path\n\n"
            "from medai_lab.datasets.phantom import write_phantom_dataset\n"
            "from medai_lab.pacs.server import OrthancServer\n"
            "from medai_lab.pacs.dicomweb import DicomWebClient\n"
            "from medai_lab.pacs.upload import upload\n\n"
            "work = Path(out)\nshutil.rmtree(work, ignore_errors=True)\n"
            "ds = write_phantom_dataset(work / 'source', 'liver', 1, fmt='dicom', seed=seed,\n"
            "                           progress=False)\n"
            "pacs = OrthancServer(work / 'orthanc').start()\n"
            "client = DicomWebClient(pacs.dicomweb_url)\n"
            "report, skipped = upload(client, ds / 'imagesTr')\n"
            "print('PACS at', pacs.dicomweb_url, '| sent', report.sent, 'instances')"
        ),
        md("## 2. Query"),
        code(
            "import pandas as pd\n\nfrom medai_lab.pacs import QueryFilter\n\n"
            "rows = client.query(QueryFilter(modality='CT'), 'SERIES')\n"
            "pd.DataFrame(rows)[['PatientID', 'StudyDate', 'Modality', 'SeriesDescription',\n"
            "                    'NumberOfSeriesRelatedInstances']]"
        ),
        md("## 3. Pull, de-identified\nOr use the browser below: search, select, pull."),
        code(
            "from medai_lab.deid import Deidentifier\n"
            "from medai_lab.deid.keys import load_or_create_key\n"
            "from medai_lab.pacs.pull import pull\n\n"
            "deid = Deidentifier(load_or_create_key(work / 'deid.key'))\n"
            "pulled = pull(client, QueryFilter(modality='CT'), work / 'pulled',\n"
            "              deidentifier=deid, progress=False)\n"
            "series = sorted({p.parent for p in (work / 'pulled').rglob('*.dcm')})\n"
            "print(len(series), 'series pulled')"
        ),
        code(
            "import pydicom\n\n"
            "first = pydicom.dcmread(next(series[0].glob('*.dcm')), stop_before_pixels=True)\n"
            "print('PatientName:', first.PatientName, '| identity removed:',\n"
            "      first.get('PatientIdentityRemoved'), '|', first.get('DeidentificationMethod'))"
        ),
        md("## 4. Look at it"),
        code("from medai_lab.widgets import view\n\nview(series[0])"),
        md("## 5. The same, interactively"),
        code(
            "from medai_lab.pacs.widget import PacsBrowser\n\n"
            "PacsBrowser(client, out=work / 'pulled-interactive')"
        ),
        md("## 6. Stop the workshop PACS"),
        code("pacs.stop()"),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def labels_notebook() -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(
            "# Labels in, results out\n\nHospitals already have labels: the RT structure sets "
            "(RTSTRUCT) drawn for every radiotherapy plan, and DICOM SEG. Here a workshop PACS "
            "holds lung CT studies with their RTSTRUCTs (named the way hospitals name them: "
            "`Lung_L`, `Lung_R`, `Nodule_1`). We pull them **de-identified**, turn them into a "
            "training cohort, train the lung template briefly, then segment a study from the PACS "
            "and send the result **back as a DICOM SEG** that the viewer overlays."
        ),
        params(
            'out = "medai-labels"  # PACS storage, cohort, runs\n'
            'preset = "smoke"  # smoke (seconds), cpu (minutes), gpu\ncases = 3\nseed = 0'
        ),
        md("## 1. A workshop PACS with CT studies and their RT structure sets"),
        code(
            "import shutil\nfrom pathlib import Path\n\n"
            "from medai_lab.datasets.phantom import write_phantom_dataset\n"
            "from medai_lab.io import load_nifti\n"
            "from medai_lab.io.rtstruct_write import write_rtstruct\n"
            "from medai_lab.pacs.dicomweb import DicomWebClient\n"
            "from medai_lab.pacs.server import OrthancServer\n"
            "from medai_lab.pacs.upload import upload\n\n"
            "work = Path(out)\nshutil.rmtree(work, ignore_errors=True)\n"
            "src = write_phantom_dataset(work / 'source', 'lung', cases, fmt='dicom', seed=seed,\n"
            "                            progress=False)\n"
            "for series in sorted((src / 'imagesTr').iterdir()):\n"
            "    truth = load_nifti(src / 'labelsTr' / f'{series.name}.nii.gz')\n"
            "    rt = truth.array.copy()\n"
            "    half = truth.shape[0] // 2  # array x runs to the patient's left here\n"
            "    rt[half:][rt[half:] == 1] = 3\n"
            "    truth.array = rt\n"
            "    write_rtstruct(truth, series, series / 'rtss.dcm',\n"
            "                   names={1: 'Lung_R', 3: 'Lung_L', 2: 'Nodule_1'})\n"
            "pacs = OrthancServer(work / 'orthanc').start()\n"
            "client = DicomWebClient(pacs.dicomweb_url)\n"
            "sent, _ = upload(client, src / 'imagesTr')\n"
            "print('PACS at', pacs.dicomweb_url, '| sent', sent.sent, 'instances')"
        ),
        md(
            "## 2. Pull, de-identified, and build the cohort\nThe pull de-identifies on the "
            "way in (PS3.15, with the Clean Descriptors Option so that ROI names survive, "
            "cleaned). `medai-lab info` lists the RTSTRUCTs and the series they label; "
            "`build_cohort` (CLI: `medai-lab cohort DIR OUT --task lung`) maps ROI names to the "
            "task's labels through the synonym table and writes an MSD-layout dataset."
        ),
        code(
            "from medai_lab.datasets.cohort import build_cohort\n"
            "from medai_lab.deid import Deidentifier\n"
            "from medai_lab.deid.keys import load_or_create_key\n"
            "from medai_lab.io import discover_series\n"
            "from medai_lab.pacs import QueryFilter, pull\n"
            "from medai_lab.tasks import compose\n\n"
            "deid = Deidentifier(load_or_create_key(work / 'deid.key'), ['clean-descriptors'])\n"
            "pull(client, QueryFilter(), work / 'pulled', deidentifier=deid, progress=False)\n"
            "print(discover_series(work / 'pulled').describe())\n"
            "labels = compose('lung', preset)['task']['labels']\n"
            "cohort = build_cohort(work / 'pulled', work / 'cohort', task='lung', labels=labels,\n"
            "                      modality='CT', progress=False)\n"
            "print(cohort.describe())"
        ),
        md("## 3. Train the lung template on the cohort"),
        code(
            "from medai_lab.tasks.runner import template\n\n"
            "train, _ = template('lung')\n"
            "result = train(preset, str(work / 'cohort'), [], out_dir=str(work / 'runs'))\n"
            "model = result.extra['exports']['torchscript']\n"
            "print('model:', model)"
        ),
        md(
            "## 4. Segment a study from the PACS, result back as DICOM SEG\nPull the study, "
            "predict on its own grid, write a SEG (highdicom; one segment per label with SNOMED "
            "CT codes and the model's identification) and store it with STOW-RS. CLI: "
            "`medai-lab predict MODEL --study UID --url URL --out DIR --store`."
        ),
        code(
            "from medai_lab.inference.roundtrip import segment_study\n\n"
            "study_uid = client.query(QueryFilter(), 'STUDY')[0]['StudyInstanceUID']\n"
            "report = segment_study(client, study_uid, model, work / 'roundtrip', store=True,\n"
            "                       progress=False)\n"
            "print(report.describe())\n"
            "segs = client.query(QueryFilter(study_uid=study_uid, modality='SEG'), 'SERIES')\n"
            "print('SEG series in the PACS for this study:', len(segs))"
        ),
        md("## 5. The viewer overlays the SEG on its study"),
        code(
            "from medai_lab.widgets import view\n\n"
            "view(work / 'roundtrip' / 'dicom', labels=report.seg, preset='lung')"
        ),
        md("## 6. Stop the workshop PACS"),
        code("pacs.stop()"),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def annotate_notebook() -> nbformat.NotebookNode:
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(
            "# Label with a model's help, then train on the labels\n\nThe active-learning loop "
            "in one notebook: a trained template model proposes the organ you click on, you "
            "accept and correct it, the case joins a training dataset and the model is tuned on "
            "it. The viewer calls the same functions when you click with the **assist** tool and "
            "press Enter; here they are called headless so the notebook also runs in CI."
        ),
        params(
            'task = "liver"\npreset = "smoke"  # smoke (seconds), cpu (minutes), gpu\n'
            'out = "medai-annotate"  # run, labels, dataset\n'
            "model = None  # None: train one here; or a run folder / MLflow run id / .ts / .onnx"
        ),
        md("## 1. A model to ask\nAny trained template run or export; a short run if none."),
        code(
            "import shutil\nfrom pathlib import Path\n\n"
            "from medai_lab.tasks import compose, train\n\n"
            "work = Path(out)\nshutil.rmtree(work, ignore_errors=True)\n"
            "cfg = compose(task, preset)\n"
            "run = train(task, preset, overrides=['trainer.max_epochs=1'], out_dir=work,\n"
            "            progress=False)\n"
            "model = model or run.run_dir\nprint('model:', model)"
        ),
        md(
            "## 2. An unlabelled case, and a click on the liver\nThe proposal is computed in a "
            "96^3 region around the click, on this kernel's CPU (or the server's GPU)."
        ),
        code(
            "import numpy as np\n\n"
            "from medai_lab.datasets.phantom import make_phantom\n"
            "from medai_lab.evaluation.metrics import dice_score\n"
            "from medai_lab.widgets import view\n"
            "from medai_lab.widgets.assist import accept_proposal\n\n"
            "phantom = cfg['data']['phantom']\n"
            "image, truth = make_phantom(task, 1234, phantom['shape'], phantom['spacing'])\n"
            "names = {int(k): v for k, v in cfg['task']['labels'].items()}\n"
            "viewer = view(image, assist=model, label_names=names)\n"
            "liver = truth.array == 1  # only to score the labels below\n"
            "click = np.argwhere(liver)[len(np.argwhere(liver)) // 2].tolist()\n"
            "print('proposal accepted:', accept_proposal(viewer, [click], label=1), 'voxels')\n"
            "print(f'Dice of the proposal: {dice_score(viewer.labels == 1, liver):.2f}')\nviewer"
        ),
        md(
            "## 3. Correct it\nWith the brush and eraser in the viewer; here the same edits "
            "from Python (`viewer.paint`), each one undo step in open views. A `smoke` model has "
            "learned almost nothing, so the correction does most of the work here; a model "
            "trained longer leaves less to correct."
        ),
        code(
            "viewer.paint((viewer.labels == 1) & ~liver, 0)  # erase what is not liver\n"
            "viewer.paint(liver & (viewer.labels != 1), 1)  # paint what was missed\n"
            "print(f'Dice after correction: {dice_score(viewer.labels == 1, liver):.2f}')\n"
            "saved = viewer.save(work / 'case_labels.nii.gz')\nprint('saved', saved.name)\n"
            "viewer.stats()"
        ),
        md(
            "## 4. Add the case to a dataset and fine-tune\nThe corrected case joins a copy of "
            "the run's training data (MSD layout, `dataset.json` + `manifest.csv`); the run "
            "continues for one more epoch on it (`medai-lab train --resume`)."
        ),
        code(
            "from medai_lab.widgets.active import append_case, fine_tune\n\n"
            "data = work / 'dataset'\nshutil.copytree(run.data_dir, data)\n"
            "print('new case:', append_case(data, viewer))\n"
            "tuned = fine_tune(task, data, preset=preset, out_dir=work, epochs=1, progress=False)\n"
            "score = tuned.metrics['dice_mean']\n"
            "print(f'fine-tuned on {tuned.data_dir.name}: dice_mean {score:.3f}')"
        ),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def _metadata() -> dict:
    return {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"},
        "language_info": {"name": "python"},
    }  # fmt: skip


NOTEBOOKS = {**{f"{t}.ipynb": (lambda t=t: task_notebook(t)) for t in TASKS},
             "pacs_deid.ipynb": pacs_notebook,
             "labels_pacs.ipynb": labels_notebook,
             "annotate.ipynb": annotate_notebook}  # fmt: skip


def render(name: str) -> str:
    nb = NOTEBOOKS[name]()
    for n, cell in enumerate(nb.cells):
        cell.id = f"{Path(name).stem}-{n:02d}"  # stable ids: reproducible files
    return nbformat.writes(nb, version=4) + "\n"


def main(check: bool = False) -> int:
    stale = []
    for name in NOTEBOOKS:
        path, text = HERE / name, render(name)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python notebooks/build.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(check="--check" in sys.argv))
