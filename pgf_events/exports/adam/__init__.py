"""ADaM from the engine's own derivations: each subject's derived state
(:func:`pgf_events.projections.derive.derive_patient`, what ``pgf status`` and every report read) and
the subject's SDTM rows (the sources each analysis record names).

- ADSL: populations (ENRLFL = ITTFL: enrolled; SAFFL: at least one infusion; COMPLFL: all planned
  doses), treatment dates, baseline weight (the VS record flagged last before exposure) and KPS.
- ADTTE: OS, DFS and relapse (death competing: CMPEVFL) from the protocol's survival origin, as
  ``pgf report survival`` computes them (DELENTRY carries the delayed entry at MSC D1 when the origin
  is the transplant); time to neutrophil engraftment and to red-cell recovery from the endpoint
  anchor (censored at the evaluation date; a lineage met at baseline has no record).
- ADRS: engraftment (Y/N), red-cell recovery (Y/N), best platelet response (CR/PR/NR, NE while
  pending) with the engine's reason; ANL01FL marks the records in the rates of ``pgf report
  endpoints`` (a lineage met at baseline is NE and out of its denominator).
- ADAE: every AE record with analysis dates, numeric grade and treatment emergence (onset on or after
  the first infusion).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pgf_events.domain import values as vo
from pgf_events.exports.adam.meta import ADAM
from pgf_events.exports.sdtm.subject import Subject
from pgf_events.projections.derive import derive_patient

DATASETS = ADAM
SPID_ORDER = ("DS", "DD", "LB", "AE", "EX", "PR", "RS", "VS", "MB", "XG", "MH", "IE", "DM")
TTE_PARAMS = {"OS": "Overall Survival (days)", "DFS": "Disease-Free Survival (days)",
              "RELAPSE": "Time to Relapse, death competing (days)", "TTNEUT": "Time to Neutrophil Engraftment (days)",
              "TTRBC": "Time to Red-Cell Recovery (days)"}
RS_PARAMS = {"NEUTENG": ("Neutrophil Engraftment", "neutrophil_engraftment", "NEUT"),
             "RBCREC": ("Red-Cell Recovery", "rbc_recovery", "HGB"),
             "PLTRESP": ("Best Platelet Response", "platelet_response", "PLAT")}


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class Sources:
    """pgf event reference -> the SDTM records that carry it (by --SPID)."""

    def __init__(self, s: Subject):
        self.by_ref: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for domain in SPID_ORDER:
            for row in s.rows.get(domain, []):
                ref = row.get(f"{domain}SPID")
                if ref:
                    self.by_ref.setdefault(ref, []).append((domain, row))

    def of(self, refs: list[str], test: str | None = None, var: str = "DTC") -> dict[str, Any]:
        for ref in refs:
            for domain, row in self.by_ref.get(ref, []):
                if test is None or row.get(f"{domain}TESTCD") == test:
                    name = f"{domain}{var}" if f"{domain}{var}" in row else f"{domain}STDTC"
                    return {"SRCDOM": domain, "SRCVAR": name, "SRCSEQ": row.get(f"{domain}SEQ"),
                            "PGFREF": ";".join(refs)}
        return {"SRCDOM": None, "SRCVAR": None, "SRCSEQ": None, "PGFREF": ";".join(refs) or None}


def build_adam(subjects: list[Subject]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in ADAM}
    for s in subjects:
        state = derive_patient(s.p, s.params).as_json()
        sources = Sources(s)
        adsl = _adsl(s, state)
        out["ADSL"].append(adsl)
        if state["enrolled"]:
            out["ADTTE"] += _adtte(s, state, sources)
            out["ADRS"] += _adrs(s, state, sources)
        out["ADAE"] += _adae(s, adsl)
    return out


def _adsl(s: Subject, state: dict[str, Any]) -> dict[str, Any]:
    dm = s.rows["DM"][0]
    weights = [r for r in s.rows.get("VS", []) if r["VSLOBXFL"] == "Y"]
    screenings = sorted(s.p.active(vo.Screening), key=lambda vr: (vr[1].date, vr[0]))
    kps = next((r.kps for _, r in reversed(screenings) if r.kps is not None), None)
    ends = [r for r in s.rows.get("DS", []) if r["DSSCAT"] == "STUDY PARTICIPATION"]
    end = ends[-1] if ends else None
    status = None if end is None else ("COMPLETED" if end["DSDECOD"] == "COMPLETED" else "DISCONTINUED")
    treated = s.rfstdtc is not None
    return {
        "STUDYID": s.trial, "USUBJID": s.usubjid, **{k: dm[k] for k in (
            "SUBJID", "SITEID", "COUNTRY", "AGE", "AGEU", "SEX", "ARM", "ARMCD", "ACTARM", "ACTARMCD", "ARMNRS",
            "DTHFL")},
        "TRT01P": dm["ARM"], "TRT01A": dm["ACTARM"], "ENRLFL": "Y" if state["enrolled"] else "N",
        "ITTFL": "Y" if state["enrolled"] else "N", "SAFFL": "Y" if treated else "N",
        "COMPLFL": "Y" if state["course_completed"] else "N", "TRTSDT": s.rfstdtc, "TRTEDT": s.rfxendtc,
        "NDOSES": len(s.infusions), "TRANSDT": s.p.registration.transplant_date, "PGFTYPE": state["pgf_type"],
        "WEIGHTBL": weights[-1]["VSSTRESN"] if weights else s.p.registration.weight_kg, "KPSBL": kps,
        "RANDDT": _day(state["enrolment_date"]), "EOSSTT": status or ("ONGOING" if state["enrolled"] else None),
        "EOSDT": end["DSSTDTC"] if end else None, "DTHDT": _day(state["death_date"]),
        "PROTVERS": state["protocol_version"],
    }


def _tte(s: Subject, paramcd: str, start: date, obs: dict[str, Any], event: str, censor: str,
         sources: Sources, origin: str, competing: str | None = None) -> dict[str, Any]:
    status = obs["status"]
    source = sources.of(list(obs["refs"]))
    return {"STUDYID": s.trial, "USUBJID": s.usubjid, "PARAMCD": paramcd, "PARAM": TTE_PARAMS[paramcd],
            "STARTDT": start, "ADT": start + timedelta(days=obs["time"]), "AVAL": obs["time"],
            "CNSR": 0 if status == 1 else 1,
            "EVNTDESC": event if status == 1 else (competing if status == 2 else censor),
            "CNSDTDSC": censor if status != 1 else None, "CMPEVFL": "Y" if status == 2 else None,
            "DELENTRY": obs.get("entry"), "ORIGIN": origin, "ENRLFL": "Y", **source}


def _adtte(s: Subject, state: dict[str, Any], sources: Sources) -> list[dict[str, Any]]:
    out = []
    survival = state["survival"]
    start = _day(survival["origin_date"])
    origin = survival["label"]
    censor = "LAST DISEASE ASSESSMENT" if survival["dfs_censor"] == "last_disease_assessment" else "LAST KNOWN ALIVE"
    if start is not None:
        if survival["os"]:
            out.append(_tte(s, "OS", start, survival["os"], "DEATH", "LAST KNOWN ALIVE", sources, origin))
        if survival["dfs"]:
            dfs = survival["dfs"]
            relapse = state["relapse_date"] == (start + timedelta(days=dfs["time"])).isoformat()
            out.append(_tte(s, "DFS", start, dfs, "RELAPSE" if relapse else "DEATH", censor, sources, origin))
        if survival["relapse"]:
            relapse_censor = ("LAST DISEASE ASSESSMENT" if survival["relapse_censor"] == "last_disease_assessment"
                              else "LAST KNOWN ALIVE")
            out.append(_tte(s, "RELAPSE", start, survival["relapse"], "RELAPSE", relapse_censor, sources, origin,
                            competing="DEATH WITHOUT RELAPSE (COMPETING EVENT)"))
    e = state["endpoints"]
    anchor = _day(e["anchor_date"])
    evaluation = _day(state["evaluation_date"])
    if anchor is None or evaluation is None:
        return out
    for paramcd, name, key in (("TTNEUT", "neutrophil_engraftment", "neutrophil_engraftment_date"),
                               ("TTRBC", "rbc_recovery", "rbc_recovery_date")):
        if e.get("reasons", {}).get(name) == "met_at_baseline":
            continue
        found = e[name]
        day = _day(e[key])
        if day is not None and found:
            obs = {"time": (day - anchor).days, "status": 1, "refs": found["refs"]}
        else:
            obs = {"time": max(0, (evaluation - anchor).days), "status": 0, "refs": []}
        reason = (e.get("reasons", {}).get(name) or "not reached").replace("_", " ").upper()
        out.append(_tte(s, paramcd, anchor, obs, "ENGRAFTMENT" if paramcd == "TTNEUT" else "RED-CELL RECOVERY",
                        f"EVALUATION DATE ({reason})", sources, f"endpoint anchor ({e['anchor']})"))
    return out


def _adrs(s: Subject, state: dict[str, Any], sources: Sources) -> list[dict[str, Any]]:
    e = state["endpoints"]
    if not e["anchor_date"]:
        return []
    out = []
    reasons = e.get("reasons", {})
    values = {"NEUTENG": ("Y" if e["neutrophil_engraftment_date"] else "N", e["neutrophil_engraftment_date"],
                          e["neutrophil_engraftment"]),
              "RBCREC": ("Y" if e["rbc_recovery_date"] else "N", e["rbc_recovery_date"], e["rbc_recovery"]),
              "PLTRESP": (e["platelet_response"] or "NE", e["platelet_response_date"], e["platelet"])}
    for paramcd, (param, name, test) in RS_PARAMS.items():
        avalc, day, found = values[paramcd]
        reason = reasons.get(name)
        baseline = reason == "met_at_baseline"
        adt = _day(day)
        out.append({"STUDYID": s.trial, "USUBJID": s.usubjid, "PARAMCD": paramcd, "PARAM": param,
                    "AVALC": "NE" if baseline else avalc, "ADT": adt, "ADY": s.dy(adt), "REASON": reason,
                    "ANL01FL": None if baseline else "Y",
                    **sources.of(list(found["refs"]) if found else [], test, var="STRESN")})
    return out


def _adae(s: Subject, adsl: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ae in s.rows.get("AE", []):
        start = ae["AESTDTC"]
        out.append({"STUDYID": s.trial, "USUBJID": s.usubjid, **{k: ae[k] for k in (
            "AESEQ", "AETERM", "AEDECOD", "AECAT", "AESER", "AEREL", "AEOUT", "AETOXGR")},
            "ATOXGRN": int(ae["AETOXGR"]), "ASTDT": start, "AENDT": ae.get("AEENDTC"), "ASTDY": ae["AESTDY"],
            "TRTEMFL": "Y" if s.rfstdtc is not None and start >= s.rfstdtc else "N", "SAFFL": adsl["SAFFL"],
            "SRCDOM": "AE", "SRCVAR": "AESEQ", "SRCSEQ": ae["AESEQ"], "PGFREF": ae["AESPID"]})
    return out
