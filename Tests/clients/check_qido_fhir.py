"""Independent clients against a live node: dicomweb-client (QIDO-RS) and fhir.resources
(FHIR R4B models). Run by Tests/GatewayServerTests/StandardClientsTests.swift with the
node's address, its CA, a clinic certificate and the token and study UIDs it uploaded.
Exits non-zero, with the reason, on any mismatch."""
import argparse
import json
import sys

import requests
from dicomweb_client.api import DICOMwebClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--series", required=True)
    a = p.parse_args()

    session = requests.Session()
    # REQUESTS_CA_BUNDLE in the environment would otherwise win over session.verify.
    session.trust_env = False
    session.verify = a.ca
    session.cert = (a.cert, a.key)
    client = DICOMwebClient(url=a.base + "/dicomweb", session=session)

    studies = client.search_for_studies(search_filters={"PatientID": a.token, "purpose": "TREAT"})
    check(len(studies) == 2, f"two studies for the token, got {len(studies)}")
    from pydicom.dataset import Dataset
    datasets = [Dataset.from_json(s) for s in studies]
    uids = {d.StudyInstanceUID for d in datasets}
    check(a.study in uids, f"study {a.study} in {uids}")
    first = next(d for d in datasets if d.StudyInstanceUID == a.study)
    check(first.PatientID == a.token, "PatientID is the token")
    check(first.StudyDate == "20241122", f"StudyDate {first.StudyDate}")
    check(list(first.ModalitiesInStudy) == ["CT", "SR"], f"ModalitiesInStudy {first.ModalitiesInStudy}")
    check(int(first.NumberOfStudyRelatedInstances) == 412, "NumberOfStudyRelatedInstances")
    check(first.RetrieveURL.endswith("/studies/" + a.study), f"RetrieveURL {first.RetrieveURL}")

    ranged = client.search_for_studies(
        search_filters={"StudyDate": "20241101-20241130", "ModalitiesInStudy": "CT", "purpose": "TREAT"},
        fields=["StudyDescription"])
    check(len(ranged) >= 1, "date range + modality finds the study")
    described = [Dataset.from_json(s) for s in ranged if Dataset.from_json(s).StudyInstanceUID == a.study]
    check(described and described[0].StudyDescription == "胸部CT平扫", "includefield StudyDescription, UTF-8")

    series = client.search_for_series(study_instance_uid=a.study, search_filters={"purpose": "TREAT"})
    check(len(series) == 2, f"two series, got {len(series)}")
    s0 = [Dataset.from_json(s) for s in series]
    check({s.SeriesInstanceUID for s in s0} == {a.series, a.series + ".2"}, "series UIDs")
    check({s.Modality for s in s0} == {"CT", "SR"}, "series modalities")
    ct = client.search_for_series(study_instance_uid=a.study, search_filters={"Modality": "CT", "purpose": "TREAT"})
    check(len(ct) == 1 and Dataset.from_json(ct[0]).SeriesNumber == 2, "series filter by Modality")

    none = client.search_for_studies(search_filters={"PatientID": "v1:" + "A" * 43, "purpose": "TREAT"})
    check(none == [], "no match is an empty result (204)")

    r = session.get(a.base + "/fhir/ImagingStudy", params={
        "subject:identifier": "urn:imaging-gateway:patient-token|" + a.token, "started": "ge2024-11-01",
        "modality": "CT", "purpose": "TREAT"})
    check(r.status_code == 200, f"FHIR search status {r.status_code}: {r.text[:300]}")
    check(r.headers["Content-Type"].startswith("application/fhir+json"), "FHIR media type")
    bundle = Bundle.model_validate_json(r.text)
    check(bundle.type == "searchset", "searchset")
    matches = [e.resource for e in bundle.entry if e.search.mode == "match"]
    endpoints = [e.resource for e in bundle.entry if e.search.mode == "include"]
    check(len(matches) == 1, f"one CT study since 2024-11-01, got {len(matches)}")
    study = next(m for m in matches if m.identifier[0].value == "urn:oid:" + a.study)
    check(study.status == "available", "status")
    check(study.subject.identifier.value == a.token, "subject identifier is the token")
    check([m.code for m in study.modality] == ["CT", "SR"], "modality codings")
    check(study.started.isoformat() == "2024-11-22T14:30:15+08:00", f"started {study.started}")
    check(study.numberOfInstances == 412 and len(study.series) == 2, "counts and series")
    check(len(endpoints) == 1 and endpoints[0].connectionType.code == "dicom-wado-rs", "Endpoint included")
    check(study.endpoint[0].reference == "Endpoint/" + endpoints[0].id, "endpoint reference")

    everything = Bundle.model_validate_json(session.get(a.base + "/fhir/ImagingStudy", params={
        "subject:identifier": "urn:imaging-gateway:patient-token|" + a.token, "purpose": "TREAT"}).text)
    check(everything.total == 2, f"both studies without filters, got {everything.total}")

    bad = session.get(a.base + "/fhir/ImagingStudy", params={"subject:identifier": a.token})
    check(bad.status_code == 400 and json.loads(bad.text)["resourceType"] == "OperationOutcome", "OperationOutcome on error")

    meta = session.get(a.base + "/fhir/metadata")
    CapabilityStatement.model_validate_json(meta.text)
    print("ok")


def check(condition: bool, what: str) -> None:
    if not condition:
        print("FAILED: " + what, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
