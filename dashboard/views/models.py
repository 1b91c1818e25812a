"""Models page: the store as a table, training with live progress, per-model view, import/export."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.figures import enlarge, spectrum8, to_rgb8
from dashboard.samples import sample_images
from dashboard.state import get_store, server_paths_allowed
from dashboard.training import TrainRequest, estimate_seconds, run_training, time_two_steps
from dashboard.ui import error_line, guarded, log
from dashboard.uploads import SAMPLES_KEY, read_uploads
from engine.errors import ConfigError, DifError
from engine.method.config import METHODS, TrainConfig
from engine.method.registry import get_method
from engine.residuals.registry import DEFAULT_EXTRACTOR, available_extractors
from engine.storage.names import validate_name

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "zip"]


def model_table() -> None:
    """All stored models, one row each; unreadable entries are listed as warnings."""
    store = get_store()
    rows, broken = [], []
    for name, fp, problem in store.scan():
        if fp is None:
            broken.append(f"{name}: {problem}")
            continue
        acc = fp.test_metrics.get("accuracy") if fp.test_metrics else None
        rows.append(
            {
                "name": fp.name,
                "method": fp.method,
                "train generated": fp.n_fake,
                "train real": fp.n_real,
                "held-out accuracy": None if acc is None else round(100 * float(acc), 1),
                "checked": "held-out" if acc is not None else "NOT CHECKED",
                "extractor": fp.extractor,
                "crop": fp.crop,
                "created": fp.created,
            }
        )
    st.subheader(f"Models in the store ({len(rows)})")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="model_table")
    else:
        st.info("The store has no models yet: add one below, or run `dif serve` without --no-demo to get the demo zoo.")
    unchecked = [r["name"] for r in rows if r["held-out accuracy"] is None]
    if unchecked:
        st.warning(
            f"Not checked on held-out images: {', '.join(unchecked)}. Nobody knows how often these models are right; "
            "their verdicts may claim real photos. Retrain them below with enough images (the page holds a quarter "
            "out)."
        )
    for line in broken:
        st.warning(f"unreadable entry {line}")


def _config_inputs() -> TrainConfig:
    d = TrainConfig()
    c1, c2, c3 = st.columns(3)
    extractors = available_extractors()
    method = c1.selectbox("Method", METHODS, index=METHODS.index(d.method), key="tr_method")
    extractor = c1.selectbox(
        "Residual extractor",
        extractors,
        index=extractors.index(DEFAULT_EXTRACTOR) if DEFAULT_EXTRACTOR in extractors else 0,
        key="tr_extractor",
    )
    crop = c2.number_input("Crop", min_value=32, max_value=1024, value=d.crop, step=8, key="tr_crop")
    border = c2.number_input("Border", min_value=0, max_value=64, value=d.border, step=1, key="tr_border")
    steps = c3.number_input("Steps", min_value=1, max_value=100_000, value=d.steps, step=50, key="tr_steps")
    batch = c3.number_input("Batch", min_value=2, max_value=1024, value=d.batch, step=2, key="tr_batch")
    d1, d2 = st.columns(2)
    target = _rate_input(
        d1,
        "False-positive target",
        d.target_fpr,
        "tr_target_fpr",
        "share of real photos the model's cut may flag (set among real photos it did not train on)",
        minimum=0.01,
    )
    jpeg_target = _rate_input(
        d2,
        "JPEG false-positive target",
        d.jpeg_target_fpr,
        "tr_jpeg_target_fpr",
        "the same for JPEG suspects, set among JPEG re-saves (0: as above). At 0.10 a default sd1 model found 80% "
        "of another SD set's JPEG-75 copies instead of 63.5%, and flagged 13.5-14.3% of real JPEGs (docs/RESULTS.md)",
        minimum=0.0,
    )
    return TrainConfig(
        method=method,
        extractor=extractor,
        crop=int(crop),
        border=int(border),
        steps=int(steps),
        batch=int(batch),
        target_fpr=target,
        jpeg_target_fpr=jpeg_target,
    )


def _rate_input(column: DeltaGenerator, label: str, value: float, key: str, help_text: str, minimum: float) -> float:
    """A false-positive rate field: two decimals, below one half (a cut flagging more is no detector)."""
    return float(
        column.number_input(
            label, min_value=minimum, max_value=0.49, value=value, step=0.01, format="%.2f", key=key, help=help_text
        )
    )


def add_model() -> None:
    """Form for a new model; the training itself runs below it with progress and a cancel button."""
    with st.expander("Add a model", expanded=False):
        name = st.text_input("Model name", key="tr_name", help="1-64 of A-Z a-z 0-9 . _ - +")
        sources = ["Upload images or a zip"] + (["Folders on the server"] if server_paths_allowed() else [])
        mode = st.radio("Images from", sources, horizontal=True, key="tr_mode")
        fake_files = real_files = None
        fake_dir = real_dir = ""
        if mode == sources[0]:
            fake_files = st.file_uploader(
                "Generated images (the model's outputs)", type=IMAGE_TYPES, accept_multiple_files=True, key="tr_fake"
            )
            real_files = st.file_uploader("Real photos", type=IMAGE_TYPES, accept_multiple_files=True, key="tr_real")
            st.caption(
                "A quarter of each kind (whole photos: tiles of one scene stay together) is held out of training to "
                "measure "
                "the model's accuracy; with fewer than 8 of each nothing can be held out and the model stays NOT "
                "CHECKED."
            )
        else:
            fake_dir = st.text_input("Folder of generated images", key="tr_fake_dir")
            real_dir = st.text_input("Folder of real photos", key="tr_real_dir")
            st.caption("Each folder is split in seeded halves: one trains, the other measures held-out accuracy.")
        config: TrainConfig | None = None
        with guarded("training settings"):
            config = _config_inputs()
        overwrite = st.checkbox("Replace a model of the same name", key="tr_overwrite")
        if config is not None:
            time_hint(config)
        running = st.session_state.pop(
            "tr_running", False
        )  # set by the click; gone on the next rerun, however this one ends
        st.button(
            "Train",
            type="primary",
            key="tr_go",
            disabled=running,
            on_click=lambda: st.session_state.update(tr_running=True),
            help="disabled while a training run is going",
        )
        go = running
    if st.session_state.pop("tr_cancelled_flag", False):
        st.warning("Training cancelled; nothing was stored.")
    for line in st.session_state.pop("tr_notes", []):
        st.warning(line)
    if "tr_error" in st.session_state:
        st.error(st.session_state.pop("tr_error"))
    if "tr_done" in st.session_state:
        st.success(st.session_state.pop("tr_done"))
    if not go:
        return
    try:
        st.button("Cancel training", key="tr_cancel", on_click=lambda: st.session_state.update(tr_cancelled_flag=True))
        st.session_state["tr_done"] = train_now(
            name, mode == sources[0], config, overwrite, fake_files, real_files, fake_dir, real_dir
        )
    except Exception as exc:  # UI boundary: one line, shown after the rerun below
        log.warning("training failed: %s", exc, exc_info=not isinstance(exc, DifError))
        st.session_state["tr_error"] = f"training: {error_line(exc)}"
    st.rerun()  # re-enables Train (it is disabled while a run is going) and redraws the table


def train_now(
    name: str,
    from_uploads: bool,
    config: TrainConfig | None,
    overwrite: bool,
    fake_files,
    real_files,
    fake_dir: str,
    real_dir: str,
) -> str:
    """Validate, train and store; returns the success line (held-out accuracy first)."""
    validate_name(name, "model name")
    if config is None:
        raise ConfigError("fix the training settings first")
    if get_store().exists(name) and not overwrite:
        raise ConfigError(f"a model named {name!r} already exists (tick 'Replace' or choose another name)")
    if from_uploads:
        fake, real = read_uploads(fake_files), read_uploads(real_files)
        st.session_state["tr_notes"] = [f"skipped {line}" for line in fake.problems + real.problems]
        request = TrainRequest(name=name, config=config, fake_images=fake.images, real_images=real.images)
    else:
        request = TrainRequest(name=name, config=config, fake_dir=fake_dir.strip(), real_dir=real_dir.strip())
    fp = run_training(request, get_store())
    acc = (fp.test_metrics or {}).get("accuracy")
    checked = (
        f"held-out accuracy {100 * acc:.1f}% on {len(fp.test_files.get('real', []))} real + "
        f"{len(fp.test_files.get('fake', []))} generated images kept out of training"
        if acc is not None
        else "NOT CHECKED: too few uploads to hold any out (upload at least 8 of each)"
    )
    return f"Stored {fp.name}: {checked}; mu_real {fp.mu_real:+.4f}, mu_fake {fp.mu_fake:+.4f}"


def time_hint(config: TrainConfig) -> None:
    """How long the training steps will take, said before Train is pressed."""
    if not get_method(config.method).learned:
        st.caption("Time: a mean fingerprint trains in seconds (most of it computing residuals).")
        return
    estimate = estimate_seconds(get_store(), config)
    measured = st.session_state.get("tr_step_time", {}).get(repr(config.to_dict() | {"steps": 0}))
    if measured is not None:
        st.caption(
            f"Time: about {measured * config.steps:.0f} s for {config.steps} steps (measured here: {measured:.2f} s a "
            "step), plus residuals."
        )
    elif estimate is not None:
        st.caption(
            f"Time: about {estimate[0]:.0f} s for {config.steps} steps (scaled from {estimate[1]} DIF model(s) "
            "trained here), plus residuals."
        )
    elif st.button("Estimate the time (runs 2 steps)", key="tr_time"):
        per_step = time_two_steps(config)
        st.session_state.setdefault("tr_step_time", {})[repr(config.to_dict() | {"steps": 0})] = per_step
        st.rerun()
    else:
        st.caption(
            "Time: no DIF model trained on this server yet to time it by; press the button to measure two steps."
        )


def training_notes(fp) -> list[str]:
    """One line each on the two confounds the engine handles: a known watermark and mu_real's real photos."""
    lines = []
    if fp.watermark.get("matched"):
        lines.append(f"Watermark-matched training: {fp.watermark['reason']}.")
    elif fp.watermark.get("survey"):
        lines.append("No known watermark in the generated training images.")
    if fp.reference_pool:
        rp = fp.reference_pool
        lines.append(
            f"mu_real calibrated on {rp['n_images']} real photos from {rp['n_scenes']} scenes "
            f"({rp['mu_real_pool']:+.4f}; the training photos alone gave {rp['mu_real_training']:+.4f})."
        )
    if fp.calibration_set:
        cs = fp.calibration_set
        lines.append(f"mu_fake from {cs.get('n_fake', '?')} generated images: {cs.get('source', '')}.")
    if fp.threshold is not None:
        d = fp.decision
        lines.append(
            f"Decision: generated when rho is past {fp.threshold:+.4f}, the cut that flags {d['target_fpr']:.0%} of "
            "the "
            f"{d['reference']} ({d['n_reference']} images)."
        )
    elif fp.decision:
        reason = fp.decision.get("reason")
        lines.append("Decision: the closer of mu_real and mu_fake" + (f" ({reason})." if reason else "."))
    return lines


def model_detail() -> None:
    """The fingerprint and its spectrum (the paper's Fig. 2 view), the card, download and delete."""
    store = get_store()
    names = store.names()
    if not names:
        return
    st.subheader("Model details")
    name = st.selectbox("Model", names, key="detail_model")
    with guarded(f"model {name}"):
        fp = store.load(name)
        c1, c2 = st.columns(2)
        c1.image(enlarge(to_rgb8(fp.tensor)), caption=f"fingerprint {fp.size}x{fp.size}", width="stretch")
        c2.image(enlarge(spectrum8(fp.tensor)), caption="centred log-magnitude FFT", width="stretch")
        if fp.history:
            hist = pd.DataFrame(fp.history).set_index("step")[["batch_mu_real", "batch_mu_fake"]]
            st.line_chart(
                hist.rename(
                    columns={"batch_mu_real": "batch mean rho, real", "batch_mu_fake": "batch mean rho, generated"}
                ),
                height=200,
            )
        for line in training_notes(fp):
            st.caption(line)
        with st.expander("Card"):
            card = fp.card()
            card.pop("train_files", None)
            card.pop("history", None)
            st.json(card, expanded=1)
        d1, d2 = st.columns(2)
        d1.download_button(
            "Download model file",
            data=store.raw(name),
            file_name=f"{name}.dif.safetensors",
            mime="application/octet-stream",
            key="dl_model",
        )
        confirm = d2.checkbox(f"Yes, delete {name}", key=f"confirm_delete_{name}")
        if d2.button("Delete", disabled=not confirm, key="delete_model"):
            store.delete(name)
            st.toast(f"Deleted {name}")
            time.sleep(0.2)
            st.rerun()


def import_model() -> None:
    """Add a model from a file exported with ``dif export`` or the download button."""
    with st.expander("Import a model file"):
        upload = st.file_uploader("Model file (.safetensors)", type=["safetensors"], key="import_file")
        new_name = st.text_input("Store it as (optional)", key="import_name")
        overwrite = st.checkbox("Replace a model of the same name", key="import_overwrite")
        if st.button("Import", disabled=upload is None, key="import_go") and upload is not None:
            with guarded("import"):
                fp = get_store().import_bytes(
                    upload.getvalue(), source=upload.name[:120], name=new_name.strip() or None, overwrite=overwrite
                )
                st.success(f"Imported {fp.name}")


def landing() -> None:
    """What the tool is for, samples to attribute in one click, and where to go next."""
    st.markdown(
        "**DIF Lineage** recognises which image generator made an image.  \n"
        "1. It learns a *fingerprint* of each generator from its images (this page: **Add a model**).  \n"
        "2. **Attribute** names the known generator of a suspect image, with a confidence, or says *unknown*.  \n"
        "3. **Cross-detection** and **Lineage** group generators into families: fine-tunes share their parent's "
        "fingerprint."
    )
    with guarded("samples"):
        samples = sample_images(get_store())
        if samples:
            st.caption(
                "Try it: held-out images (never trained on) from the store; attribute one and check the verdict "
                "against its true source."
            )
            cols = st.columns(len(samples))
            for i, (col, sample) in enumerate(zip(cols, samples)):
                col.image(sample.path, caption=sample.truth, width="stretch")
                if col.button("Attribute this", key=f"sample_{i}"):
                    st.session_state[SAMPLES_KEY] = [(sample.path, sample.truth)]
                    st.switch_page("views/attribute.py")
            if st.button("Attribute all samples", key="sample_all"):
                st.session_state[SAMPLES_KEY] = [(s.path, s.truth) for s in samples]
                st.switch_page("views/attribute.py")
    c1, c2, c3 = st.columns(3)
    c1.page_link("views/attribute.py", label="Attribute your own images", icon=":material/image_search:")
    c2.page_link("views/cross.py", label="See which models detect each other", icon=":material/grid_on:")
    c3.page_link("views/lineage.py", label="See the family tree", icon=":material/account_tree:")


st.title("Models")
with st.container(border=True):
    landing()
with guarded("model table"):
    model_table()
add_model()
model_detail()
import_model()
