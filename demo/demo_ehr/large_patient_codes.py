"""Code tables behind the synthetic benchmark chart (LOINC labs and imaging, ICD-10-CM problems,
RxNorm ingredients). Displays follow the code systems' published names; values are invented."""

from __future__ import annotations

# (LOINC, display, unit, low, high) — typical adult reference ranges drive the random values.
CBC = [
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 3.2, 9.8),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 10.1, 13.8),
    ("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 140, 380),
    ("751-8", "Neutrophils [#/volume] in Blood", "10*3/uL", 1.1, 6.5),
]
CMP = [
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 134, 144),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.4, 5.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.1),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 12, 60),
    ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 12, 55),
    ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.3, 1.2),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 75, 140),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.2, 4.6),
]
MARKERS = [
    ("2039-6", "Carcinoembryonic Ag [Mass/volume] in Serum or Plasma", "ng/mL", 2.0),
    ("6875-9", "Cancer Ag 15-3 [Units/volume] in Serum or Plasma", "U/mL", 28.0),
]
CONDITIONS = [
    ("C50.412", "Malignant neoplasm of upper-outer quadrant of left female breast", "2025-01-02"),
    ("C77.3", "Secondary malignant neoplasm of axillary lymph nodes", "2025-01-02"),
    ("Z17.0", "Estrogen receptor positive status [ER+]", "2025-01-10"),
    ("D70.1", "Agranulocytosis secondary to cancer chemotherapy", "2025-04-14"),
    ("G62.0", "Drug-induced polyneuropathy", "2025-06-20"),
    ("E11.9", "Type 2 diabetes mellitus without complications", "2019-03-11"),
    ("I10", "Essential (primary) hypertension", "2017-08-02"),
    ("E78.5", "Hyperlipidemia, unspecified", "2018-05-30"),
    ("F41.1", "Generalized anxiety disorder", "2025-02-18"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis", "2020-09-09"),
    ("M81.0", "Age-related osteoporosis without current pathological fracture", "2026-02-03"),
    ("R53.83", "Other fatigue", "2025-05-01"),
    ("D64.81", "Anemia due to antineoplastic chemotherapy", "2025-05-19"),
    ("Z80.3", "Family history of malignant neoplasm of breast", "2025-01-02"),
    ("Z79.811", "Long term (current) use of aromatase inhibitors", "2025-11-03"),
]
# (RxNorm ingredient, name, first day offset, cycles, days between cycles)
DRUGS = [
    ("3639", "doxorubicin", 14, 4, 14),
    ("3002", "cyclophosphamide", 14, 4, 14),
    ("56946", "paclitaxel", 91, 12, 7),
    ("84857", "anastrozole", 301, 1, 0),
]
IMAGING = [
    ("24606-6", "MG Breast Screening", "Post-treatment changes in the left breast; no new suspicious mass."),
    ("24627-2", "CT Chest", "No pulmonary nodules or mediastinal adenopathy."),
    ("24857-5", "CT Abdomen and Pelvis", "No evidence of hepatic or osseous metastatic disease."),
    ("39863-6", "NM Bone scan", "No scintigraphic evidence of osseous metastases."),
    ("24590-2", "MRI Breast", "Decrease in size of the left breast mass consistent with treatment response."),
]
