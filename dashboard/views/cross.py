"""Cross-detection page: model i's detector on model j's held-out generated images, as a heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.crossdata import cross_for, cross_noting_left_out, family_groups, family_order, with_test_sets
from dashboard.figures import heatmap
from dashboard.state import get_store
from dashboard.ui import guarded


def _select_family(members: list[str]) -> None:
    st.session_state["cross_models"] = members


def pick_models(names: list[str]) -> list[str]:
    """Multi-select with an 'all in family' shortcut (families from the cross matrix of all models)."""
    if "cross_models" not in st.session_state:
        st.session_state["cross_models"] = names[:24]
    st.session_state["cross_models"] = [n for n in st.session_state["cross_models"] if n in names]
    chosen = st.multiselect("Models", names, key="cross_models")
    with st.expander("Select a whole family"):
        with guarded("families"):
            if st.toggle("Find families (computes the matrix of all models)", key="cross_find_families"):
                groups = [g for g in family_groups(cross_for(with_test_sets(names)[0])) if len(g) > 1]
                if not groups:
                    st.caption("No families with more than one model under the default thresholds.")
                for i, group in enumerate(groups):
                    st.button(
                        f"All in family {i + 1}: {', '.join(group)}",
                        key=f"fam_{i}",
                        on_click=_select_family,
                        args=(group,),
                    )
    return chosen


def show_matrix(chosen: list[str]) -> None:
    result = cross_noting_left_out(chosen)
    if result is None:
        return
    order = family_order(result)
    idx = [result.names.index(n) for n in order]
    acc = np.asarray(result.accuracy, dtype=float)[np.ix_(idx, idx)]
    st.plotly_chart(heatmap(order, acc), width="stretch", key="cross_heatmap")
    st.caption(
        "Each cell is a balanced accuracy in %: 50 = chance (the detector cannot tell those images from real photos), "
        "100 = perfect. Row = detector (fingerprint of), column = held-out generated images of. A high cell off the "
        "diagonal means the two models share traces (a family). Hover a cell for both directions."
    )
    frame = pd.DataFrame(acc * 100, index=pd.Index(order, name="detector"), columns=order).round(2)
    st.download_button(
        "Download CSV (accuracy %)",
        data=frame.to_csv().encode(),
        file_name="cross_detection.csv",
        mime="text/csv",
        key="cross_csv",
    )


st.title("Cross-detection")
names: list[str] = []
with guarded("models"):
    names = get_store().names()
if not names:
    st.info("No models in the store yet (see the Models page).")
else:
    chosen = pick_models(names)
    if not chosen:
        st.error("No models selected: pick at least one model.")
    else:
        with guarded("cross-detection"):
            show_matrix(chosen)
