"""hard_cost.yaml (seed 002, "3. Hard Costs" -> "Purchases or Bills as the spec says"): the
shipped spec makes Purchases, and the Bill its comments describe is a spec the loader takes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from qbo_pipeline.specs import load_specs

REPO_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"


def test_hard_costs_are_billable_purchases_paid_by_check() -> None:
    """Seed 002, "3. Hard Costs": a check from the bank account, to the vendor, its one line
    billable to the matter (project) it was paid for."""
    spec = load_specs(REPO_SPECS)["hard_cost"]
    assert spec.qbo_entity == "Purchase"
    assert spec.fields["AccountRef"].ref is not None
    assert spec.fields["AccountRef"].ref.spec == "bank_account"
    assert spec.fields["EntityRef.type"].constant == "Vendor"
    line = "Line[0].AccountBasedExpenseLineDetail."
    assert spec.fields[f"{line}BillableStatus"].constant == "Billable"
    customer = spec.fields[f"{line}CustomerRef"].ref
    assert customer is not None and customer.spec == "project"


def test_the_bill_the_comments_describe_loads(tmp_path: Path) -> None:
    """Seed 002: hard costs go to "Purchases or Bills as the spec says". The spec's comments
    say how it becomes a Bill: `qbo_entity: Bill`, VendorRef for the EntityRef fields, without
    AccountRef, PaymentType and DocNumber. Done so, the specs load, the line unchanged."""
    specs_dir = shutil.copytree(REPO_SPECS, tmp_path / "mapping_specs")
    path = specs_dir / "hard_cost.yaml"
    text = path.read_text(encoding="utf-8").replace("qbo_entity: Purchase", "qbo_entity: Bill")
    text = re.sub(r"\n  EntityRef\.value:.*?\n  EntityRef\.type:\n    constant: Vendor",
                  "\n  VendorRef:\n    ref: {spec: vendor, column: vendor_id}\n"
                  "    required: true", text, flags=re.S)
    for field in ("PaymentType", "AccountRef", "DocNumber"):
        text = re.sub(rf"\n  {field}:\n(    .*\n)+", "\n", text)
    path.write_text(text, encoding="utf-8")

    bill = load_specs(specs_dir)["hard_cost"]

    assert bill.qbo_entity == "Bill"
    assert {"VendorRef", "Line[0].AccountBasedExpenseLineDetail.CustomerRef"} <= set(bill.fields)
    assert not {"PaymentType", "AccountRef", "DocNumber", "EntityRef.value"} & set(bill.fields)
