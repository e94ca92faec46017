import type { CommandStatusEntry, InventoryEntry } from '@keytower/contracts';
import type { SubmitResult } from './submit.ts';

/** Human-readable and JSON renderings of what the CLI prints. */

/** `reason.code` of a rotate that succeeded by folding into another rotation. */
const ROTATION_FOLDED = 'rotation-folded';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Describes a submit result in one line, for standard output (success) or standard error. */
export function describeSubmitResult(action: string, result: SubmitResult): string {
  const status = result.status;
  if (result.timedOut || status === null) {
    const seen = status === null ? 'no status yet' : `last status ${status.status}`;
    return `timed out: command ${result.commandId} (${action} ${result.keyId}) has ${seen}; check later with \`keytower commands show ${result.commandId}\``;
  }
  switch (status.status) {
    case 'succeeded':
      return describeSuccess(action, result);
    case 'rejected':
      return `rejected: ${status.reason?.code ?? 'unknown'}: ${withOptionNames(status.reason?.message ?? 'no reason given')}`;
    case 'failed':
      return `failed: ${status.reason?.code ?? 'operation-failed'}: ${status.reason?.message ?? `see event ${status.terminalEvent?.id ?? 'unknown'}`}`;
    case 'dead-lettered':
      return `dead-lettered: ${status.reason?.message ?? `command ${result.commandId} was dead-lettered`}`;
    default:
      return `command ${result.commandId} is ${status.status}`;
  }
}

/** Command data fields and the options that set them, for reasons policy gives in field terms. */
const OPTION_OF_FIELD: ReadonlyArray<[field: string, option: string]> = [
  ['data.pendingWindowSeconds', '--pending-window'],
  ['data.version', '--version'],
  ['data.provider', '--provider'],
  ['data.purpose', '--purpose'],
  ['data.algorithm', '--algorithm'],
  ['data.label', '--label'],
  ['data.tags', '--tag'],
];

/** Replaces the command data field names in a policy reason with the CLI options that set them. */
export function withOptionNames(message: string): string {
  let named = message;
  for (const [field, option] of OPTION_OF_FIELD) {
    named = named.replaceAll(field, option);
  }
  return named;
}

function describeSuccess(action: string, result: SubmitResult): string {
  const key = result.key;
  const operation = result.status?.operationId ?? 'unknown';
  const suffix = `(command ${result.commandId}, operation ${operation})`;
  const reason = result.status?.reason;
  if (action === 'rotate' && reason?.code === ROTATION_FOLDED) {
    // Policy made no new version: another rotation, which finished after this rotate was
    // issued, already did what it requested. The status names that rotation's operation.
    return `rotation of key ${result.keyId} folded into the rotation by operation ${operation}: version ${key?.primaryVersion ?? '?'} is primary (command ${result.commandId})`;
  }
  switch (action) {
    case 'create':
      return `created key ${result.keyId} version ${key?.primaryVersion ?? 1} ${suffix}`;
    case 'rotate':
      return `rotated key ${result.keyId}: version ${key?.primaryVersion ?? '?'} is primary ${suffix}`;
    case 'schedule-destroy':
      return `key ${result.keyId} is pending destruction until ${key?.destroyAfter ?? '?'} ${suffix}`;
    case 'cancel-destroy':
      return `cancelled the destruction of key ${result.keyId} ${suffix}`;
    case 'destroy':
      return `destroyed key ${result.keyId} ${suffix}`;
    default:
      return `${action} of key ${result.keyId} succeeded ${suffix}`;
  }
}

/** Describes a publish that JetStream acknowledged as a duplicate of an earlier command. */
export function describeDuplicate(result: SubmitResult): string {
  return `duplicate: command ${result.commandId} was already published (stream sequence ${result.streamSequence}); nothing new was stored, showing the first submission's outcome`;
}

export function formatKeyTable(entries: readonly InventoryEntry[]): string {
  const header = [
    'KEY',
    'PROVIDER',
    'ALGORITHM',
    'STATE',
    'PRIMARY',
    'VERSIONS',
    'PENDING',
    'LABEL',
  ];
  const rows = entries.map((entry) => [
    entry.keyId,
    entry.provider,
    entry.algorithm,
    entry.state,
    entry.primaryVersion === null ? '-' : String(entry.primaryVersion),
    String(entry.versions.length),
    entry.pending === null ? '-' : entry.pending.action,
    entry.label,
  ]);
  return formatTable([header, ...rows]);
}

export function formatKey(entry: InventoryEntry): string {
  const lines = [
    `key          ${entry.keyId}`,
    `provider     ${entry.provider}`,
    `purpose      ${entry.purpose}`,
    `algorithm    ${entry.algorithm}`,
    `label        ${entry.label}`,
    `state        ${entry.state}`,
    `primary      ${entry.primaryVersion ?? '-'}`,
    `destroyAfter ${entry.destroyAfter ?? '-'}`,
    `sequence     ${entry.sequence}`,
    `pending      ${entry.pending === null ? '-' : `${entry.pending.action} ${entry.pending.operationId} (command ${entry.pending.commandId})`}`,
    `created      ${entry.createdAt} by ${entry.createdBy}`,
    `updated      ${entry.updatedAt}`,
    `tags         ${
      Object.entries(entry.tags)
        .map(([name, value]) => `${name}=${value}`)
        .join(', ') || '-'
    }`,
    'versions',
  ];
  for (const version of entry.versions) {
    lines.push(
      `  ${version.version}  ${version.state.padEnd(9)} ${version.createdAt}  ${version.nativeId}`,
    );
  }
  return lines.join('\n');
}

export function formatStatus(entry: CommandStatusEntry): string {
  const lines = [
    `command   ${entry.commandId}`,
    `type      ${entry.commandType ?? '-'}`,
    `key       ${entry.keyId ?? '-'}`,
    `actor     ${entry.actor ?? '-'}`,
    `status    ${entry.status}`,
  ];
  if (entry.reason !== undefined) {
    lines.push(`reason    ${entry.reason.code}: ${entry.reason.message}`);
  }
  if (entry.operationId !== undefined) {
    lines.push(`operation ${entry.operationId}`);
  }
  if (entry.terminalEvent !== undefined) {
    lines.push(
      `event     ${entry.terminalEvent.type} ${entry.terminalEvent.id} (${entry.terminalEvent.subject})`,
    );
  }
  lines.push(`received  ${entry.receivedAt}`, `updated   ${entry.updatedAt}`);
  return lines.join('\n');
}

function formatTable(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, index) => cell.padEnd(widths[index] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
