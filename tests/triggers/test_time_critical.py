from tests.fhirmaps.builders import SNOMED, condition, report
from tests.triggers.engine_helpers import run


def test_aml_not_in_remission_is_time_critical_and_rare() -> None:
    result = run(condition("c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission"))
    assert result.time_critical is not None
    assert result.time_critical.advice == "Do not delay treatment; request expedited review in parallel."
    assert "rare-cancer" in result.triggers
    assert all(f.urgency == "expedite" for f in result.findings)


def test_aml_in_remission_is_not_time_critical() -> None:
    assert run(condition("c1", "C92.01", "Acute myeloblastic leukemia, in remission")).time_critical is None


def test_dlbcl_by_snomed_is_time_critical_not_rare() -> None:
    result = run(condition("c1", "109969005", "Diffuse large B-cell lymphoma", system=SNOMED))
    assert result.time_critical is not None
    assert "rare-cancer" not in result.triggers


def test_history_of_dlbcl_in_remission_is_not_time_critical() -> None:
    assert run(condition("c1", "C83.30", "Diffuse large B-cell lymphoma", clinical="remission", onset="2015-01-01")).time_critical is None
    assert run(condition("c2", "Z85.72", "Personal history of other lymphomas")).time_critical is None


def test_cord_compression_with_cancer_and_not_when_negated() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    mri = report("r1", "IMPRESSION: Epidural disease at T10 with spinal cord compression.\n", kind="imaging", title="MRI spine")
    assert run(prostate, mri).time_critical is not None
    negative = report("r2", "INDICATION: Rule out cord compression.\nIMPRESSION: Osseous metastases. No cord compression.\n", kind="imaging", title="MRI spine")
    assert run(prostate, negative).time_critical is None


def test_svc_syndrome_code_with_cancer() -> None:
    lung = condition("c1", "C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung", text="Small cell lung carcinoma")
    svc = condition("c2", "I87.1", "Compression of vein", text="Superior vena cava syndrome")
    assert run(lung, svc).time_critical is not None


def test_epidural_disease_needs_compression() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    no_compression = report("r1", "IMPRESSION: Small focus of epidural disease at T10 without cord compression.\n", kind="imaging", title="MRI spine")
    assert run(prostate, no_compression).time_critical is None
    compressed = report("r2", "IMPRESSION: Epidural tumor at T10 with effacement of the thecal sac and compression of the cord.\n", kind="imaging", title="MRI")
    assert run(prostate, compressed).time_critical is not None
