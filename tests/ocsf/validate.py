"""Validates OCSF events, one JSON object per line, against the published OCSF schema.

Usage: validate.py VERSION [FILE...]   (standard input without FILE)

Each event is checked against the JSON Schema of its class (`class_uid`) with the profiles
it declares (`metadata.profiles`), as ocsf-json-schema generates it from the schema OCSF
published for VERSION; the event must claim that version in `metadata.version`, and its
`type_uid` must be `class_uid * 100 + activity_id` (which a JSON Schema cannot say). Prints one
line per invalid event and exits 1 if there was any, 2 if there were no events at all.
"""

import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main() -> int:
    version = sys.argv[1]
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    validators = {}
    lines = []
    if len(sys.argv) > 2:
        for path in sys.argv[2:]:
            with open(path, encoding="utf-8") as file:
                lines.extend(file)
    else:
        lines.extend(sys.stdin)
    checked = failed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        event = json.loads(line)
        checked += 1
        problems = []
        metadata = event.get("metadata", {})
        if metadata.get("version") != version:
            problems.append(f"metadata.version is {metadata.get('version')!r}, not {version!r}")
        class_uid = event.get("class_uid")
        activity_id = event.get("activity_id")
        if isinstance(class_uid, int) and isinstance(activity_id, int):
            if event.get("type_uid") != class_uid * 100 + activity_id:
                problems.append(f"type_uid {event.get('type_uid')} is not class_uid * 100 + activity_id")
        profiles = tuple(sorted(metadata.get("profiles", [])))
        try:
            key = (class_uid, profiles)
            if key not in validators:
                name = schema.lookup_class_name_from_uid(class_uid)
                validators[key] = Draft202012Validator(
                    schema.get_class_schema(name, list(profiles)),
                    format_checker=Draft202012Validator.FORMAT_CHECKER,
                )
            for error in validators[key].iter_errors(event):
                where = "/".join(str(p) for p in error.absolute_path) or "(event)"
                problems.append(f"{where}: {error.message}")
        except ValueError as error:
            problems.append(str(error))
        if problems:
            failed += 1
            kind = metadata.get("event_code", "?")
            for problem in problems:
                print(f"line {number} ({kind}, class {class_uid}): {problem}")
    print(f"{checked} events checked against OCSF {version}, {failed} invalid")
    if checked == 0:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
