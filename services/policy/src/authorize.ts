import { ACTOR_PATTERN, KEY_ACTIONS, type KeyAction } from '@keytower/contracts';

/**
 * Authorization of actors. This is the one decision point for identity: signature verification and
 * roles will plug in here, so callers never check an actor anywhere else.
 */

/** Actions granted to one actor: a set of actions, or every action (`*`). */
export type Grant = ReadonlySet<KeyAction> | 'all';

/** Actor identity (`user:alice`) → the actions it may request. */
export type AllowList = ReadonlyMap<string, Grant>;

/** The request `authorize()` decides on. */
export interface AuthorizationRequest {
  actor: string;
  action: KeyAction;
  keyId: string | null;
}

export type AuthorizationResult = { allowed: true } | { allowed: false; message: string };

/**
 * Parses an allow-list such as `user:alice=create,rotate;user:oncall=*`. Entries are
 * separated by `;`, actions by `,`, and `*` grants every action. Throws an error naming the
 * invalid entry, actor or action, because a typo must stop the service at start-up instead of
 * silently denying (or granting) someone.
 */
export function parseAllowList(text: string): AllowList {
  const allowList = new Map<string, Grant>();
  const entries = text
    .split(';')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');

  for (const entry of entries) {
    const separator = entry.indexOf('=');
    if (separator <= 0) {
      throw new Error(
        `invalid allow-list entry "${entry}": expected <actor>=<action>[,<action>...] or <actor>=*`,
      );
    }
    const actor = entry.slice(0, separator).trim();
    const actionList = entry.slice(separator + 1).trim();
    if (!ACTOR_PATTERN.test(actor)) {
      throw new Error(
        `invalid actor "${actor}" in allow-list entry "${entry}": expected user:<name>, service:<name> or system:<name>`,
      );
    }
    if (allowList.has(actor)) {
      throw new Error(`actor "${actor}" appears twice in the allow-list: merge its actions`);
    }
    allowList.set(actor, parseGrant(actionList, entry));
  }
  return allowList;
}

function parseGrant(actionList: string, entry: string): Grant {
  if (actionList === '*') {
    return 'all';
  }
  const actions = new Set<KeyAction>();
  for (const raw of actionList.split(',')) {
    const action = raw.trim();
    if (!(KEY_ACTIONS as readonly string[]).includes(action)) {
      throw new Error(
        `invalid action "${action}" in allow-list entry "${entry}": expected * or one of ${KEY_ACTIONS.join(', ')}`,
      );
    }
    actions.add(action as KeyAction);
  }
  return actions;
}

/** Renders an allow-list back to its text form, for logs. Contains no secrets. */
export function formatAllowList(allowList: AllowList): string {
  return [...allowList]
    .map(([actor, grant]) => `${actor}=${grant === 'all' ? '*' : [...grant].join(',')}`)
    .join(';');
}

/** Decides whether the actor may request the action. */
export function authorize(
  request: AuthorizationRequest,
  allowList: AllowList,
): AuthorizationResult {
  const grant = allowList.get(request.actor);
  if (grant === undefined) {
    return {
      allowed: false,
      message: `actor ${request.actor} is not in the policy allow-list`,
    };
  }
  if (grant !== 'all' && !grant.has(request.action)) {
    return {
      allowed: false,
      message: `actor ${request.actor} may not ${request.action} keys (allowed: ${[...grant].join(', ')})`,
    };
  }
  return { allowed: true };
}
