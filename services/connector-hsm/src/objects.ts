import pkcs11 from 'pkcs11js';
import type { Handle, Template } from 'pkcs11js';
import type { NativeState } from '@keytower/provider';

import type { Pkcs11Module } from './session-pool.ts';
import {
  ATTRIBUTE_NAMES,
  REPORTED_FLAGS,
  objectKind,
  parseVersionLabel,
  versionLabel,
  versionObjectId,
} from './templates.ts';
import type { ObjectKind } from './templates.ts';

// NOTE: pkcs11js has no async variant of C_FindObjects*, C_GetAttributeValue,
// C_SetAttributeValue or C_DestroyObject, so these run on the event loop. Each is a short call
// on a SoftHSM2 token (no key generation, no crypto), and the functions below make a bounded
// number of them per key version.

/** One token object of a key version, with the attributes read back from the token. */
export interface VersionObject {
  handle: Handle;
  kind: ObjectKind;
  label: string;
  idHex: string;
  /** Boolean attributes by CKA_* name, as the token reports them. */
  flags: Record<string, boolean>;
}

const FIND_BATCH = 64;

/** Returns every object handle that matches `template`, always finishing the search. */
export function findObjects(module: Pkcs11Module, session: Handle, template: Template): Handle[] {
  module.C_FindObjectsInit(session, template);
  try {
    const handles: Handle[] = [];
    for (;;) {
      const batch = module.C_FindObjects(session, FIND_BATCH);
      handles.push(...batch);
      if (batch.length < FIND_BATCH) {
        return handles;
      }
    }
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

function readUlong(value: Buffer): number {
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}

/** Reads the class, label, id and reported flags of one object. */
export function readObject(
  module: Pkcs11Module,
  session: Handle,
  handle: Handle,
): VersionObject | undefined {
  const [classAttribute, labelAttribute, idAttribute] = module.C_GetAttributeValue(
    session,
    handle,
    [{ type: pkcs11.CKA_CLASS }, { type: pkcs11.CKA_LABEL }, { type: pkcs11.CKA_ID }],
  );
  const kind =
    classAttribute === undefined ? undefined : objectKind(readUlong(classAttribute.value));
  if (kind === undefined) {
    return undefined;
  }

  const flagTypes = REPORTED_FLAGS[kind];
  const values = module.C_GetAttributeValue(
    session,
    handle,
    flagTypes.map((type) => ({ type })),
  );
  const flags: Record<string, boolean> = {};
  for (const attribute of values) {
    flags[ATTRIBUTE_NAMES.get(attribute.type) ?? `CKA_0x${attribute.type.toString(16)}`] =
      attribute.value[0] === 1;
  }

  return {
    handle,
    kind,
    label: labelAttribute?.value.toString('utf8') ?? '',
    idHex: idAttribute?.value.toString('hex') ?? '',
    flags,
  };
}

/** Returns the token objects of one key version, found by its CKA_LABEL and CKA_ID. */
export function findVersionObjects(
  module: Pkcs11Module,
  session: Handle,
  keyId: string,
  version: number,
): VersionObject[] {
  const handles = findObjects(module, session, [
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_LABEL, value: versionLabel(keyId, version) },
    { type: pkcs11.CKA_ID, value: versionObjectId(keyId, version) },
  ]);
  return handles
    .map((handle) => readObject(module, session, handle))
    .filter((object): object is VersionObject => object !== undefined);
}

/**
 * Returns every key object on the token whose label belongs to `keyId`, whatever its version.
 * It catches versions the inventory never recorded, such as one made by a rotation whose
 * outcome was lost in a crash.
 */
export function scanKeyObjects(
  module: Pkcs11Module,
  session: Handle,
  keyId: string,
): Array<VersionObject & { version: number }> {
  // NOTE: PKCS#11 matches labels exactly, so this reads the label of every token key object:
  // one C_GetAttributeValue per object on the token.
  const found: Array<VersionObject & { version: number }> = [];
  for (const objectClass of [
    pkcs11.CKO_SECRET_KEY,
    pkcs11.CKO_PRIVATE_KEY,
    pkcs11.CKO_PUBLIC_KEY,
  ]) {
    const handles = findObjects(module, session, [
      { type: pkcs11.CKA_TOKEN, value: true },
      { type: pkcs11.CKA_CLASS, value: objectClass },
    ]);
    for (const handle of handles) {
      const [labelAttribute] = module.C_GetAttributeValue(session, handle, [
        { type: pkcs11.CKA_LABEL },
      ]);
      const parsed = parseVersionLabel(labelAttribute?.value.toString('utf8') ?? '');
      if (parsed === undefined || parsed.keyId !== keyId) {
        continue;
      }
      const object = readObject(module, session, handle);
      if (object !== undefined) {
        found.push({ ...object, version: parsed.version });
      }
    }
  }
  return found.sort((left, right) => left.version - right.version);
}

/** Returns the native description of one object: kind, label, CKA_ID and flags, never a handle or key value. */
export function describeObject(object: VersionObject): NativeState {
  return {
    kind: object.kind,
    label: object.label,
    id: object.idHex,
    attributes: { ...object.flags },
  };
}
