"""Typed models of a mapping spec (one YAML file under `mapping_specs/`).

The models check the shape of a spec and what a single part can know about itself
(a field mapping names exactly one value source, a pattern compiles...). Checks that need
the whole spec or the whole set of specs live in `checks.py` and `loader.py`.
The format is documented, with an example of every construct, in `mapping_specs/README.md`.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from qbo_pipeline.specs.entities import DeleteAction

# \Z, not $: `$` also matches before a final newline, and "id\n" is not a column name.
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
SPEC_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
# What `str.format` accepts after `!`; anything else fails only when a row is rendered.
CONVERSIONS = ("r", "s", "a")
# A format spec must fit at least one kind of value a column can hold.
SAMPLE_VALUES: tuple[Any, ...] = ("text", 1, Decimal("1.5"), dt.date(2024, 1, 31))


class SpecModel(BaseModel):
    # Unknown keys are errors: a typo such as `requried: true` must not silently do nothing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Direction(StrEnum):
    """Which way a spec's (or one field's) values flow."""

    PUSH = "push"  # source -> QBO
    PULL = "pull"  # QBO -> source
    TWO_WAY = "two_way"  # both; a conflict policy decides when both sides changed

    @property
    def pushes(self) -> bool:
        return self is not Direction.PULL

    @property
    def pulls(self) -> bool:
        return self is not Direction.PUSH


class ConflictPolicy(StrEnum):
    REVIEW = "review"
    SOURCE_WINS = "source_wins"
    QBO_WINS = "qbo_wins"
    # The side changed last wins: the source row's updated_at against QBO's
    # MetaData.LastUpdatedTime, both in UTC; a tie (or an unknown time) goes to review.
    LAST_MODIFIED_WINS = "last_modified_wins"


class ValueType(StrEnum):
    """The JSON type a mapped value is converted to before it goes into the payload."""

    STRING = "string"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"


class MappingKind(StrEnum):
    COLUMN = "column"
    TEMPLATE = "template"
    CONSTANT = "constant"
    REF = "ref"
    LOOKUP = "lookup"


def _column_problem(column: str) -> str | None:
    if COLUMN_NAME.match(column):
        return None
    return f"'{column}' is not a plain column name (letters, digits and underscores)"


def template_pattern(template: str) -> re.Pattern[str]:
    """The regex that reads a rendered template back into its columns; ValueError if it cannot.

    Literal parts are the separators and each placeholder a non-greedy group, anchored at both
    ends: `"{number} - {name}"` reads "P-7 - Kitchen - phase 2" as number "P-7" and name
    "Kitchen - phase 2" (an earlier placeholder takes the shortest text that lets the rest
    match). Format specs, conversions, adjacent placeholders and repeated columns cannot be
    read back unambiguously, so they are refused.
    """
    template_columns(template)  # malformed templates say so first
    regex, previous_was_field = "", False
    seen: set[str] = set()
    for literal, name, format_spec, conversion in string.Formatter().parse(template):
        if literal:
            regex += re.escape(literal)
            previous_was_field = False
        if name is None:
            continue
        if format_spec or conversion:
            spec = f"!{conversion}" if conversion else f":{format_spec}"
            raise ValueError(f"{{{name}{spec}}} is formatted, and cannot be read back")
        if previous_was_field:
            raise ValueError(f"{{{name}}} follows another column with no text between them, "
                             "so the two cannot be told apart")
        if name in seen:
            raise ValueError(f"{{{name}}} appears twice")
        seen.add(name)
        regex += f"(?P<{name}>.+?)"
        previous_was_field = True
    if not seen:
        raise ValueError("it holds no column")
    return re.compile(f"^{regex}$", re.DOTALL)


def template_columns(template: str) -> list[str]:
    """The source columns a `"{number} - {name}"` template reads; ValueError if malformed."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"template {template!r} is malformed: {error}") from None
    columns = []
    for _, name, format_spec, conversion in parts:
        if name is None:
            continue
        if not COLUMN_NAME.match(name):
            raise ValueError(
                f"template {template!r} uses {{{name}}}: put a plain column name in braces"
            )
        if problem := _format_problem(name, format_spec or "", conversion):
            raise ValueError(f"template {template!r} uses {problem}")
        columns.append(name)
    return columns


def _format_problem(name: str, format_spec: str, conversion: str | None) -> str | None:
    """Why `{name!conversion:format_spec}` cannot be rendered, whatever the column holds."""
    if conversion is not None and conversion not in CONVERSIONS:
        return f"{{{name}!{conversion}}}: after '!' only r, s or a can follow - remove it"
    if "{" in format_spec:
        return f"{{{name}:{format_spec}}}: a format spec cannot hold another placeholder"
    if re.search(r"\d{5,}", format_spec):  # format() would build a string that long
        return f"{{{name}:{format_spec}}}: a width or precision of 10000 or more"
    if format_spec and not any(_formats(value, format_spec) for value in SAMPLE_VALUES):
        return (f"{{{name}:{format_spec}}}: ':{format_spec}' formats no text, number or date "
                "- see Python's format specification")
    return None


def _formats(value: Any, format_spec: str) -> bool:
    if isinstance(value, dt.date) and "%" not in format_spec:
        return False  # a date passes any text through strftime: only %-codes format it
    try:
        format(value, format_spec)
    except (ValueError, TypeError):
        return False
    return True


class RefTarget(SpecModel):
    """Another spec's record, found by the value of `column`: emits `{"value": <QBO Id>}`, or
    the bare Id with `id_only` (a field that holds an Id, such as LinkedTxn's TxnId)."""

    spec: str
    column: str
    id_only: bool = False
    # A typed reference (a Purchase's EntityRef) names the kind of record it points at.
    type: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RefTarget:
        if problem := _column_problem(self.column):
            raise ValueError(problem)
        if self.id_only and self.type is not None:
            raise ValueError("a bare Id (id_only) carries no type")
        return self


class SettingTemplate(SpecModel):
    """A template the company chooses by a setting: one template per choice of the setting
    (`{setting: customer_name_format, choices: {"Client name": "{name}", ...}}`)."""

    setting: str
    choices: dict[str, str]

    @model_validator(mode="after")
    def _check(self) -> SettingTemplate:
        if not self.choices:
            raise ValueError("give a template for each choice of the setting")
        problems = []
        for choice, template in self.choices.items():
            try:
                template_columns(template)
            except ValueError as error:
                problems.append(f"choice {choice!r}: {error}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def columns(self) -> list[str]:
        """Every column some choice reads (the source query reads them all)."""
        return list(dict.fromkeys(column for template in self.choices.values()
                                  for column in template_columns(template)))


class SettingSwitch(SpecModel):
    """A switch a company turns on or off by a boolean setting (`{setting: capitalize_names}`)."""

    setting: str


class SettingValue(SpecModel):
    """A text a company sets (`{setting: service_income_account}`): `value` is the company's,
    filled in by `sync.settings.for_company` before a run maps a row; a spec leaves it out."""

    setting: str
    value: str | None = None


class CreateOnTheFly(SpecModel):
    """Create the looked-up record when QBO lacks it, through another spec's mapping (seed 003:
    "services will be created on the fly if they don't already exist in QuickBooks")."""

    spec: str


class SpecChoice(SpecModel):
    """What one choice of a company setting changes in a spec (see `SettingChoices`): the
    spec's direction for that company (only ever narrowed: the assets are built from the
    spec's own), whether its unlinked rows sync only when used, and conflict policies."""

    direction: Direction | None = None
    only_when_used: bool | None = None
    conflict_fields: dict[str, ConflictPolicy] = Field(default_factory=dict)
    # Only the rows meeting it sync for a company with this choice (seed 004's "Expense
    # Export Status": only paid expenses, or only paid and approved ones).
    when: Condition | None = None


class SettingChoices(SpecModel):
    """A spec that each company shapes by a choice setting (`{setting: customers_sync,
    choices: {always: {direction: push}, when used: {only_when_used: true}}}`):
    `sync.settings.for_company` applies the company's choice before a run."""

    setting: str
    choices: dict[str, SpecChoice]

    @model_validator(mode="after")
    def _check(self) -> SettingChoices:
        if not self.choices:
            raise ValueError("give what each choice of the setting changes ({} for nothing)")
        return self


class LookupTarget(SpecModel):
    """A QBO record found by one of its fields (an Item by Name): emits `{"value": <QBO Id>}`.

    The looked-up value is a source column or a fixed `value`. A column's lookup can fall back
    on a `default` when the column is empty, and `create` the record QBO lacks.
    """

    qbo_entity: str
    by: str = "Name"
    column: str | None = None
    value: str | None = None
    default: str | SettingValue | None = None
    create: CreateOnTheFly | None = None

    @model_validator(mode="after")
    def _check(self) -> LookupTarget:
        if (self.column is None) == (self.value is None):
            raise ValueError("a lookup needs exactly one of 'column' or 'value'")
        if self.column is not None and (problem := _column_problem(self.column)):
            raise ValueError(problem)
        if self.column is None and self.default is not None:
            raise ValueError("a lookup of a fixed value has no empty column to default: "
                             "remove 'default'")
        if self.column is None and self.create is not None:
            # A fixed value (the "Sales Tax" item) is the company's to keep, never ours to make.
            raise ValueError("a lookup of a fixed value does not create its record: remove "
                             "'create', or look up a column")
        return self

    @property
    def default_setting(self) -> str | None:
        """The company setting the default reads, if it reads one."""
        return self.default.setting if isinstance(self.default, SettingValue) else None


class FieldMapping(SpecModel):
    """How one QBO field gets its value, and the rules that value must meet.

    `direction` is the field's own flow; None takes the spec's `direction` (see
    `EntitySpec.flow_of`).
    """

    column: str | None = None
    # A template, or one chosen by a company setting (`sync.settings.for_company` picks it
    # before a run maps a row: the rest of the sync only ever sees a plain template).
    template: str | SettingTemplate | None = None
    constant: JsonValue = None
    ref: RefTarget | None = None
    lookup: LookupTarget | None = None
    type: ValueType | None = None
    # One fix for every rule of the field, or a fix per rule ({pattern: "remove any ':'"}):
    # a fix written for one rule must not be shown for another (see `hint_for`).
    hint: str | dict[str, str] | None = Field(
        default=None, description="what a bookkeeper should do when a rule fails"
    )
    # Validation rules, dbt style: they sit beside the field they guard.
    # On by default: no control characters (but tab and line breaks) and no bidirectional
    # overrides or isolates, which QBO stores but no person wants in a name or memo.
    plain_text: bool = True
    required: bool = False
    email: bool = False
    min_length: NonNegativeInt | None = None
    max_length: NonNegativeInt | None = None
    pattern: str | None = None
    allowed_characters: str | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    allowed_values: list[JsonValue] | None = None
    direction: Direction | None = None

    @property
    def kind(self) -> MappingKind:
        for kind in (MappingKind.COLUMN, MappingKind.TEMPLATE, MappingKind.REF,
                     MappingKind.LOOKUP):
            if getattr(self, kind.value) is not None:
                return kind
        return MappingKind.CONSTANT

    @property
    def source_columns(self) -> list[str]:
        """The source columns this mapping reads."""
        if self.column is not None:
            return [self.column]
        if isinstance(self.template, SettingTemplate):
            return self.template.columns
        if self.template is not None:
            return template_columns(self.template)
        if self.ref is not None:
            return [self.ref.column]
        if self.lookup is not None and self.lookup.column is not None:
            return [self.lookup.column]
        return []

    @property
    def reversible(self) -> bool:
        """True when a QBO value can be written back to the source (pull, two-way)."""
        return self.reverse_problem is None

    @property
    def reverse_problem(self) -> str | None:
        """Why QBO's value of this field cannot be written back to the source, or None."""
        kind = self.kind
        if kind is MappingKind.CONSTANT:
            return "a constant has no column to write QuickBooks' value to"
        if isinstance(self.template, SettingTemplate):
            return (f"a template chosen by setting {self.template.setting} cannot be read back "
                    "(the company may choose another): make the field push only")
        if kind is MappingKind.TEMPLATE:
            assert self.template is not None
            try:
                template_pattern(self.template)
            except ValueError as error:
                return f"template {self.template!r} cannot be read back: {error}"
        if kind is MappingKind.LOOKUP:
            assert self.lookup is not None
            if self.lookup.column is None:
                return "a lookup of a fixed value has no column to write QuickBooks' value to"
            if self.lookup.by != "Name":
                return (f"a lookup by {self.lookup.by} cannot be read back "
                        "(QuickBooks references carry only the Name)")
        return None

    @model_validator(mode="after")
    def _check(self) -> FieldMapping:
        problems = self._value_source_problems() + self._rule_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _value_source_problems(self) -> list[str]:
        given = [kind.value for kind in MappingKind
                 if kind is not MappingKind.CONSTANT and getattr(self, kind.value) is not None]
        if "constant" in self.model_fields_set:
            given.append("constant")
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            return [f"give exactly one of column, template, constant, ref, lookup (found: {found})"]
        problems = []
        if self.column is not None and (problem := _column_problem(self.column)):
            problems.append(problem)
        if isinstance(self.template, str):
            try:
                template_columns(self.template)
            except ValueError as error:
                problems.append(str(error))
        return problems

    def _rule_problems(self) -> list[str]:
        problems = []
        texts = {"pattern": self.pattern, "allowed_characters": self.allowed_characters}
        for name, text in texts.items():
            if text is None:
                continue
            if name == "allowed_characters":
                text = allowed_characters_pattern(text)
            try:
                re.compile(text)
            except (re.error, OverflowError, RecursionError) as error:
                # re raises OverflowError for a{99999999999}, RecursionError for deep nesting
                problems.append(f"{name} is not a valid regular expression: {error}")
        if _inverted(self.min_length, self.max_length):
            problems.append(f"min_length {self.min_length} is above max_length {self.max_length}")
        if _inverted(self.min, self.max):
            problems.append(f"min {self.min} is above max {self.max}")
        problems.extend(self._hint_problems())
        return problems

    @property
    def rules(self) -> list[str]:
        """The rules this field applies (`type`: its value must convert; always there)."""
        # `is not`, not `in`: `min: 0` is a rule, and 0 == False.
        return ["type", *(rule for rule in HINTED_RULES[1:]
                          if getattr(self, rule) is not None and getattr(self, rule) is not False)]

    def hint_for(self, rule: str) -> str | None:
        """The fix a spec gives for a broken `rule` (see HINTED_RULES), or None."""
        if isinstance(self.hint, dict):
            return self.hint.get(rule)
        return self.hint

    def _hint_problems(self) -> list[str]:
        if not isinstance(self.hint, dict):
            return []
        rules = self.rules
        return [f"hint.{rule}: the field has no rule {rule!r} (its rules: {', '.join(rules)})"
                for rule in self.hint if rule not in rules]


# The rules a hint can be given for, by name: `type` is a value that cannot be read or converted
# to the field's type; the others are the rule keys of a field.
HINTED_RULES = ("type", "required", "email", "min_length", "max_length", "pattern",
                "allowed_characters", "plain_text", "min", "max", "allowed_values")


def allowed_characters_pattern(characters: str) -> str:
    """The full-match regex for an `allowed_characters` rule (a regex character class body)."""
    return f"[{characters}]*"


def _inverted(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and low > high


class SourceSpec(SpecModel):
    """Where the rows come from: a table or a query, and the columns the sync relies on."""

    table: str | None = None
    query: str | None = None
    primary_key: str
    updated_at: str
    # Optional for specs that push no transaction (a pulled table of services has none);
    # checks.py requires it of a spec pushing a transaction entity.
    business_date: str | None = None
    deleted: str | None = Field(
        default=None, description="soft-delete column: the row is deleted when it is set"
    )
    filter: str | None = Field(default=None, description="SQL where-clause over the source")
    # Columns no field converts but the sync or the source's SQL relies on (`hours` that a
    # query turns into whole hours, a flag a setting tests): each is checked to hold its type.
    column_types: dict[str, ValueType] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        problems = []
        if (self.table is None) == (self.query is None):
            problems.append("give exactly one of 'table' or 'query'")
        for name in ("table", "primary_key", "updated_at", "business_date", "deleted"):
            value = getattr(self, name)
            if value is not None and (problem := _column_problem(value)):
                problems.append(f"{name}: {problem}")
        problems.extend(f"column_types.{column}: {problem}" for column in self.column_types
                        if (problem := _column_problem(column)))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def columns(self) -> list[str]:
        """The bookkeeping columns every source row must carry."""
        names = [self.primary_key, self.updated_at, self.business_date, self.deleted]
        return [name for name in names if name is not None]


class TaxLineSpec(SpecModel):
    """A line made from a tax amount on the parent row, such as "Tax (8.5%)" (seed 001).

    `fields` are evaluated over the parent row; `Amount` comes from `amount_column`.
    No line is added when the amount is empty or zero.
    """

    amount_column: str
    fields: dict[str, FieldMapping] = Field(default_factory=dict)


class SettingCondition(SpecModel):
    """A company setting holding one value (`{setting: invoice_item_options, equals: ...}`);
    `sync.settings.for_company` decides it before a run."""

    setting: str
    equals: str | bool


class LineGroup(SpecModel):
    """Lines sent one per group of child rows (seed 002's "Aggregate Time/Expense Items": one
    line per service): rows with equal `by` columns make one line, whose `sum` columns are
    the group's totals; another column keeps its value when every row of the group holds the
    same, else it is empty. `when`: only for the companies whose setting says so."""

    by: list[str]
    sum: list[str] = Field(default_factory=list)
    when: SettingCondition | None = None

    @model_validator(mode="after")
    def _check(self) -> LineGroup:
        problems = [f"{column}: {problem}" for column in (*self.by, *self.sum)
                    if (problem := _column_problem(column))]
        if not self.by:
            problems.append("by: name the column(s) whose equal values make one line")
        problems.extend(f"sum: {column!r} is also a column of by: a group's by columns are "
                        "equal, so there is nothing to sum" for column in self.sum
                        if column in self.by)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LinesSpec(SpecModel):
    """Child rows that become the payload's `Line` list (invoice lines)."""

    table: str
    parent_key: str
    order_by: str
    fields: dict[str, FieldMapping]
    tax_line: TaxLineSpec | None = None
    group: LineGroup | None = None

    @model_validator(mode="after")
    def _check(self) -> LinesSpec:
        for name in ("table", "parent_key", "order_by"):
            if problem := _column_problem(getattr(self, name)):
                raise ValueError(f"{name}: {problem}")
        return self


class ConflictSpec(SpecModel):
    """What happens when the source and QBO both hold a different value for a field."""

    default: ConflictPolicy = ConflictPolicy.REVIEW
    fields: dict[str, ConflictPolicy] = Field(default_factory=dict)

    def policy_for(self, path: str) -> ConflictPolicy:
        return self.fields.get(path, self.default)


class Condition(SpecModel):
    """A row condition: `column` equals a value, or is one of several values."""

    column: str
    equals: JsonValue = None
    one_of: list[JsonValue] | None = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if ("equals" in self.model_fields_set) == (self.one_of is not None):
            raise ValueError("a condition needs exactly one of 'equals' or 'one_of'")
        if problem := _column_problem(self.column):
            raise ValueError(problem)
        return self

    @property
    def accepted(self) -> list[Any]:
        return list(self.one_of) if self.one_of is not None else [self.equals]


class SettingSpec(SpecModel):
    """A named per-company switch that, when on, keeps only the rows meeting `when`."""

    description: str
    default: bool = False
    when: Condition


class StartDateExemption(SpecModel):
    """Rows that sync whatever their business date while a company's boolean setting is on
    (seed 002's "Select/Deselect to Sync All Unpaid Invoices": `{setting:
    sync_all_unpaid_invoices, when: {column: status, one_of: [draft, sent]}}`).
    `sync.settings.for_company` decides the setting before a run: the spec it gives keeps
    the exemption, with `setting` None, only for a company that has it on."""

    setting: str | None
    when: Condition


class PullTarget(StrEnum):
    """Where pulled QBO records land in the source."""

    UPSERT = "upsert"  # a row per QBO record, found by `qbo_id_column`, inserted when missing
    LINKED = "linked"  # only source rows already linked to a QBO record get their columns set


class PullRead(StrEnum):
    CHANGED = "changed"  # the QBO records changed since the pull cursor
    ALL = "all"  # every QBO record, every run


class QboDeleteAction(StrEnum):
    """What a record deleted (or made inactive) in QBO does to its source row."""

    IGNORE = "ignore"
    MARK_INACTIVE = "mark_inactive"  # the inactive column becomes false
    SET_DELETED = "set_deleted"  # `source.deleted` is set to the run's clock


class QboCondition(SpecModel):
    """A condition on a QBO record: the value at `field` (a QBO path) equals, or is one of."""

    field: str
    equals: JsonValue = None
    one_of: list[JsonValue] | None = None

    @model_validator(mode="after")
    def _check(self) -> QboCondition:
        if ("equals" in self.model_fields_set) == (self.one_of is not None):
            raise ValueError("a condition needs exactly one of 'equals' or 'one_of'")
        return self

    @property
    def accepted(self) -> list[Any]:
        return list(self.one_of) if self.one_of is not None else [self.equals]


class AutoApplyRule(SpecModel):
    """Source columns set, without review, when a pulled QBO record meets `when`
    (seed 001: an invoice fully paid in QBO becomes PAID)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    when: QboCondition
    # `set` in YAML; named apart so that the builtin stays usable in this class.
    set_columns: dict[str, JsonValue] = Field(alias="set")
    description: str | None = None


class PullSpec(SpecModel):
    """How QBO records flow into the source: where they land, which are read, and what a
    delete in QBO and the auto-apply rules do."""

    target: PullTarget
    qbo_id_column: str | None = Field(
        default=None, description="the source column holding the QBO Id (target: upsert)")
    read: PullRead = PullRead.CHANGED
    modified_within_days: PositiveInt | None = None
    filter: str | None = Field(default=None, description="an extra QBO query condition")
    on_qbo_delete: QboDeleteAction = QboDeleteAction.IGNORE
    inactive_column: str | None = None
    auto_apply: list[AutoApplyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> PullSpec:
        problems = [f"{name}: {problem}" for name in ("qbo_id_column", "inactive_column")
                    if (value := getattr(self, name)) is not None
                    and (problem := _column_problem(value))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def rule_label(self, index: int) -> str:
        """How previews name an auto-apply rule: its description, else its position."""
        return self.auto_apply[index].description or f"auto_apply[{index}]"


class EntitySpec(SpecModel):
    """One synced entity: a source, the QBO entity it becomes, how each field maps and which
    way it flows, and (`pull`) where QBO's values land in the source."""

    name: str
    label: str | None = Field(
        default=None, description="what a bookkeeper calls a record, e.g. 'time entry'"
    )
    qbo_entity: str
    direction: Direction = Direction.PUSH
    source: SourceSpec
    fields: dict[str, FieldMapping]
    lines: LinesSpec | None = None
    match_keys: list[str | list[str]] = Field(default_factory=list)
    conflict: ConflictSpec = Field(default_factory=ConflictSpec)
    # Required of a spec that pushes (checks.py); a pull-only spec sends nothing to delete.
    on_source_delete: DeleteAction = DeleteAction.IGNORE
    settings: dict[str, SettingSpec] = Field(default_factory=dict)
    pull: PullSpec | None = None
    # Seed 004's "Synchronization Format": the record's text sent in capital letters (its own
    # fields that only push, e-mail addresses left alone); a company setting says when.
    uppercase: bool | SettingSwitch = False
    # A whole entity a company turns on by a company-wide boolean setting (seed 004's "CREDIT
    # MEMO EXPORT: Here you can enable the syncing of Credit Memos"); one setting can switch
    # several specs together. `<spec>.enabled` still switches each one off on its own.
    enabled_by: SettingSwitch | None = None
    # Seed 004's customers: a row not linked to QBO yet syncs only when used, i.e. when a
    # record of this run refers to it (directly or through others: an invoice's project's
    # client), or when it is asked for by key (`sync --entity E --id K`); see `sync.scope`.
    only_when_used: bool = False
    # Parts of the spec a company setting chooses (`SettingChoices`).
    by_setting: SettingChoices | None = None
    # Rows pushed even when dated before the sync start date, as a company setting says.
    start_date_exempt: StartDateExemption | None = None

    @property
    def record_label(self) -> str:
        """How messages name a record of this spec: `client 17`, `time entry 5`."""
        return self.label or self.name.replace("_", " ")

    @property
    def match_key_groups(self) -> list[tuple[str, ...]]:
        """Match keys as alternatives, each a tuple of QBO field paths that must all match."""
        return [(key,) if isinstance(key, str) else tuple(key) for key in self.match_keys]

    def flow_of(self, mapping: FieldMapping) -> Direction:
        """Which way one field flows: its own `direction`, else the spec's.

        A field that reads no source column (a constant, a lookup of a fixed value) has
        nowhere to write QBO's value, so unless told otherwise it is only ever pushed.
        """
        if mapping.direction is not None:
            return mapping.direction
        if not mapping.source_columns:
            return Direction.PUSH
        return self.direction

    @property
    def chosen_templates(self) -> dict[str, SettingTemplate]:
        """The fields whose template a company setting chooses, by path."""
        return {path: m.template for path, m in self.fields.items()
                if isinstance(m.template, SettingTemplate)}

    @property
    def pushed_fields(self) -> dict[str, FieldMapping]:
        """The fields sent to QBO (push and two-way), in spec order."""
        return {path: m for path, m in self.fields.items() if self.flow_of(m).pushes}

    @property
    def pulled_fields(self) -> dict[str, FieldMapping]:
        """The fields written back to the source (pull and two-way), in spec order."""
        return {path: m for path, m in self.fields.items() if self.flow_of(m).pulls}

    @property
    def pull_only_fields(self) -> dict[str, FieldMapping]:
        return {path: m for path, m in self.fields.items()
                if self.flow_of(m) is Direction.PULL}

    @property
    def pushes(self) -> bool:
        """True when anything goes to QBO: a pushed field, or lines (always pushed)."""
        return bool(self.pushed_fields) or self.lines is not None

    @property
    def pulls(self) -> bool:
        """True when anything comes back from QBO into the source."""
        return bool(self.pulled_fields)

    def references(self) -> dict[str, str]:
        """Spec path (`fields.ParentRef`) -> referenced spec name, lines included: a `ref`'s
        spec, and the spec a lookup creates its records with (it syncs first, so that a
        record it has just created in QBO is found, not made twice)."""
        return {path: target for path, mapping in self.all_fields().items()
                if (target := _referred_spec(mapping)) is not None}

    def all_fields(self) -> dict[str, FieldMapping]:
        """Every field mapping by its spec path (`fields.X`, `lines.fields.X`,
        `lines.tax_line.fields.X`)."""
        found = {f"fields.{path}": m for path, m in self.fields.items()}
        if self.lines is not None:
            for prefix, fields in (("lines.fields", self.lines.fields),
                                   ("lines.tax_line.fields", _tax_fields(self.lines))):
                found.update({f"{prefix}.{path}": m for path, m in fields.items()})
        return found


def _referred_spec(mapping: FieldMapping) -> str | None:
    if mapping.ref is not None:
        return mapping.ref.spec
    if mapping.lookup is not None and mapping.lookup.create is not None:
        return mapping.lookup.create.spec
    return None


def _tax_fields(lines: LinesSpec) -> dict[str, FieldMapping]:
    return lines.tax_line.fields if lines.tax_line is not None else {}
