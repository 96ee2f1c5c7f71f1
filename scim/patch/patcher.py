"""The PATCH engine's core: operations applied in order to a private copy of one document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any, ClassVar

from scim.discovery import attribute_definitions
from scim.patch import documents
from scim.patch.documents import JsonObject
from scim.patch.multi_valued import apply_filtered, apply_to_every_element, apply_whole_list
from scim.patch.operations import PatchError, PatchOperation, PatchOperationName
from scim.patch.paths import USER, PathResolver, ResourceKind, Target
from scim.patch.values import complex_value, normalize_booleans, simple, single_primary

_ADD = PatchOperationName.ADD
_REMOVE = PatchOperationName.REMOVE


class Patcher:
    """Applies operations to a private copy of one resource document; subclasses are the
    resource types, with the attributes they handle themselves."""

    kind: ClassVar[ResourceKind]

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document: JsonObject = deepcopy(dict(document))
        self.paths = PathResolver(self.kind, self.document)
        self.namespaces: dict[str, None] = {}

    def run(self, operations: Iterable[PatchOperation]) -> JsonObject:
        for operation in operations:
            if operation.path is None:
                # RFC 7644 §3.5.2.1/§3.5.2.3: without a path, each member of the value is an
                # attribute of the resource; we accept any attribute path as the key (Entra ID
                # sends "name.givenName" and full URN paths there).
                for key, value in operation.value.items():
                    self.apply_path(operation.op, str(key), value, from_value=True)
            else:
                self.apply_path(operation.op, operation.path, operation.value, from_value=False)
        self.finish()
        return self.document

    def apply_path(self, op: PatchOperationName, text: str, value: Any, from_value: bool) -> None:
        namespace, rest = self.paths.locate(text, op, value)
        if rest is None:
            self.apply_to_schema(op, namespace, value, text)
        else:
            self.apply_target(op, self.paths.resolve(namespace, rest, text), value, from_value)

    def container(self, namespace: str | None) -> JsonObject:
        if namespace is None:
            return self.document
        self.namespaces[namespace] = None
        container = self.document.get(namespace)
        if not isinstance(container, dict):
            container = {}
            self.document[namespace] = container
        return container

    def apply_own(self, op: PatchOperationName, target: Target, value: Any) -> bool:
        """Apply a core attribute this resource type handles itself; False for all others."""
        return False

    def apply_to_schema(
        self, op: PatchOperationName, namespace: str | None, value: Any, label: str
    ) -> None:
        """A path that is a schema URN: its value holds that schema's attributes."""
        if op is _REMOVE:
            if namespace is None:
                raise PatchError("invalidPath", f'"{label}": the core schema cannot be removed.')
            self.namespaces[namespace] = None
            self.document.pop(namespace, None)
            return
        if not isinstance(value, Mapping):
            raise PatchError("invalidValue", f'"{label}" takes an object of its attributes.')
        for key, item in value.items():
            if str(key).lower().startswith("urn:"):
                raise PatchError("invalidPath", f'"{key}" cannot be nested in "{label}".')
            if str(key).lower() == "schemas":
                # scim2-models serializes an extension object with its own "schemas" member.
                continue
            target = self.paths.resolve(namespace, str(key), f"{label}:{key}")
            self.apply_target(op, target, item, from_value=True)

    def apply_target(
        self, op: PatchOperationName, target: Target, value: Any, from_value: bool
    ) -> None:
        if target.namespace is None:
            folded = target.attribute.lower()
            if folded == "schemas":
                # Clients echo "schemas" in path-less values; we derive it from the extensions.
                if from_value:
                    return
                raise PatchError("mutability", '"schemas" follows the extensions present.')
            if self.apply_own(op, target, value):
                return
            if folded == "id":
                # Okta echoes the resource's own id in path-less replaces (Groups, sometimes
                # Users): an unchanged id is no modification.
                if op is not _REMOVE and value == self.document.get("id"):
                    return
                raise PatchError("mutability", '"id" is assigned by the service provider.')
        self.check_mutability(target)
        container = self.container(target.namespace)
        definition = target.definition
        if definition is not None:
            is_multi_valued = bool(definition["multiValued"])
            is_complex = definition["type"] == "complex"
        else:
            current = documents.get(container, target.attribute)
            is_multi_valued = (
                target.value_filter is not None
                or isinstance(current, list)
                or (current is None and isinstance(value, list))
            )
            is_complex = target.sub_attribute is not None or isinstance(value, Mapping)
        if is_multi_valued:
            self.apply_multi_valued(op, target, container, value)
        elif is_complex:
            self.applycomplex_value(op, target, container, value)
        else:
            self.applysimple(op, target, container, value)

    def check_mutability(self, target: Target) -> None:
        # RFC 7644 §3.5.2: an operation must respect the attribute's mutability (RFC 7643 §2.2).
        for definition in (target.definition, target.sub_definition):
            if definition is not None and definition.get("mutability") == "readOnly":
                raise PatchError(
                    "mutability", f'"{target.label}": {definition["name"]} is read-only.'
                )
        definition = target.definition
        if definition is not None and definition.get("mutability") == "immutable":
            if not documents.is_empty(
                documents.get(self.paths.peek(target.namespace), target.attribute)
            ):
                raise PatchError(
                    "mutability", f'"{target.label}": {definition["name"]} is immutable.'
                )

    def applysimple(
        self, op: PatchOperationName, target: Target, container: JsonObject, value: Any
    ) -> None:
        if target.sub_attribute is not None:
            raise PatchError("invalidPath", f'"{target.label}": the attribute is not complex.')
        if op is _REMOVE or documents.is_empty(value):
            documents.pop(container, target.attribute)
        else:
            documents.put(
                container, target.attribute, simple(target.definition, value, target.label)
            )

    def applycomplex_value(
        self, op: PatchOperationName, target: Target, container: JsonObject, value: Any
    ) -> None:
        current = documents.get(container, target.attribute)
        if target.sub_attribute is not None:
            updated = dict(current) if isinstance(current, Mapping) else {}
            if op is _REMOVE or documents.is_empty(value):
                documents.pop(updated, target.sub_attribute)
            else:
                label = target.label
                documents.put(
                    updated, target.sub_attribute, simple(target.sub_definition, value, label)
                )
        elif op is _REMOVE or documents.is_empty(value):
            updated = {}
        else:
            updated, cleared = complex_value(target.definition, value, target.label)
            # RFC 7644 §3.5.2.1: add merges sub-attributes; replace (§3.5.2.3) replaces them.
            if op is _ADD and isinstance(current, Mapping):
                merged = {k: v for k, v in current.items() if k not in cleared}
                merged.update(updated)
                updated = merged
        # An object with no sub-attribute left is unassigned (manager {"value": ""} clears it).
        if updated:
            documents.put(container, target.attribute, updated)
        else:
            documents.pop(container, target.attribute)

    def apply_multi_valued(
        self, op: PatchOperationName, target: Target, container: JsonObject, value: Any
    ) -> None:
        current = documents.get(container, target.attribute)
        elements = list(current) if isinstance(current, list) else documents.as_list(current)
        written: list[Any] = []
        if target.value_filter is not None:
            elements = apply_filtered(op, target, elements, value, written)
        elif target.sub_attribute is not None:
            elements = apply_to_every_element(op, target, elements, value, written)
        else:
            elements = apply_whole_list(op, target, elements, value, written)
        single_primary(target.definition, target.label, elements, written)
        if elements:
            documents.put(container, target.attribute, elements)
        else:
            documents.pop(container, target.attribute)

    def finish(self) -> None:
        normalize_booleans(self.document, attribute_definitions(self.kind.core_schema))
        for schema in self.kind.extension_schemas:
            extension = self.document.get(schema)
            if isinstance(extension, dict):
                normalize_booleans(extension, attribute_definitions(schema))
        for namespace in self.namespaces:
            self.declare(namespace)

    def declare(self, namespace: str) -> None:
        """RFC 7643 §3: "schemas" lists exactly the extensions the resource carries."""
        extension = self.document.get(namespace)
        schemas = self.document.get("schemas")
        declared = list(schemas) if isinstance(schemas, list) else [self.kind.core_schema]
        present = [s for s in declared if isinstance(s, str) and s.lower() == namespace.lower()]
        if isinstance(extension, dict) and extension:
            if not present:
                self.document["schemas"] = [*declared, namespace]
            return
        self.document.pop(namespace, None)
        if present:
            self.document["schemas"] = [s for s in declared if s not in present]


class UserPatcher(Patcher):
    """PATCH of a User: passwords are accepted and dropped."""

    kind = USER

    def apply_own(self, op: PatchOperationName, target: Target, value: Any) -> bool:
        # RFC 7643 §4.1.1: writeOnly and never returned; passwords are not ours to keep.
        return target.attribute.lower() == "password"

    def finish(self) -> None:
        # RFC 7643 §4.1.1: password is never returned; it must not reach storage either.
        documents.pop(self.document, "password")
        super().finish()
