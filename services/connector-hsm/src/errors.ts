import pkcs11 from 'pkcs11js';
import {
  AuthenticationError,
  CryptoRejectedError,
  InvalidStateError,
  KeyNotFoundError,
  NotSupportedError,
  ProviderError,
  UnavailableError,
} from '@keytower/provider';

const PROVIDER = 'hsm' as const;

/**
 * PKCS#11 v2.40 return values that pkcs11js 2.1.7 exports no constant for; the values are
 * those of the `pkcs11t.h` header that pkcs11js ships.
 */
const CKR_MISSING_FROM_PKCS11JS: ReadonlyArray<[number, string]> = [
  [0x1b, 'CKR_ACTION_PROHIBITED'],
  [0x140, 'CKR_CURVE_NOT_SUPPORTED'],
];

/** CKR_* return values by number, built from the constants pkcs11js exports. */
const CKR_NAMES: ReadonlyMap<number, string> = new Map([
  ...Object.entries(pkcs11)
    .filter(
      (entry): entry is [string, number] =>
        entry[0].startsWith('CKR_') && typeof entry[1] === 'number',
    )
    .map(([name, value]): [number, string] => [value, name]),
  ...CKR_MISSING_FROM_PKCS11JS,
]);

/** Returns the CKR_* name of a PKCS#11 return value, or its hex form when it has no name. */
export function ckrName(code: number): string {
  return CKR_NAMES.get(code) ?? `CKR_0x${code.toString(16).padStart(8, '0')}`;
}

const NATIVE_RESULT_PATTERN = /CKR_[A-Z0-9_]+:(\d+)/;

/**
 * Returns the numeric CKR_* value carried by a pkcs11js error, or undefined for other errors.
 * Most calls throw a `Pkcs11Error` with a numeric `code`. C_SetAttributeValue, C_CreateObject
 * and C_CopyObject throw the native error unwrapped, so the value is read from its message
 * (`CKR_NAME:number`).
 */
export function ckrCode(error: unknown): number | undefined {
  if (!(error instanceof Error)) {
    return undefined;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number' && error.name === 'Pkcs11Error') {
    return code;
  }
  const match = NATIVE_RESULT_PATTERN.exec(error.message);
  return match === null ? undefined : Number(match[1]);
}

/** Returns the CKR_* value of a name, or undefined when the name is unknown. */
export function ckrValue(name: string): number | undefined {
  for (const [value, known] of CKR_NAMES) {
    if (known === name) {
      return value;
    }
  }
  return undefined;
}

type ErrorClass = new (
  message: string,
  options: { provider: 'hsm'; cause?: unknown },
) => ProviderError;

/**
 * Error class of each mapped CKR_* value, chosen so its retry behaviour matches the value's
 * PKCS#11 v2.40 meaning. Values not listed become a non-retryable ProviderError with code
 * `internal`, because an unknown result from a token is not safe to repeat blindly.
 */
export const CLASS_BY_CKR: ReadonlyArray<[ErrorClass, string[]]> = [
  [
    AuthenticationError,
    [
      'CKR_PIN_INCORRECT',
      'CKR_PIN_INVALID',
      'CKR_PIN_LEN_RANGE',
      'CKR_PIN_EXPIRED',
      'CKR_PIN_LOCKED',
      'CKR_USER_NOT_LOGGED_IN',
      'CKR_USER_PIN_NOT_INITIALIZED',
      'CKR_USER_TYPE_INVALID',
      'CKR_USER_ANOTHER_ALREADY_LOGGED_IN',
      'CKR_USER_TOO_MANY_TYPES',
    ],
  ],
  [KeyNotFoundError, ['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']],
  [
    NotSupportedError,
    [
      'CKR_FUNCTION_NOT_SUPPORTED',
      'CKR_MECHANISM_INVALID',
      'CKR_CURVE_NOT_SUPPORTED',
      'CKR_RANDOM_NO_RNG',
    ],
  ],
  [
    CryptoRejectedError,
    [
      'CKR_ATTRIBUTE_READ_ONLY',
      'CKR_ATTRIBUTE_SENSITIVE',
      'CKR_ATTRIBUTE_TYPE_INVALID',
      'CKR_ATTRIBUTE_VALUE_INVALID',
      'CKR_TEMPLATE_INCOMPLETE',
      'CKR_TEMPLATE_INCONSISTENT',
      'CKR_MECHANISM_PARAM_INVALID',
      'CKR_KEY_SIZE_RANGE',
      'CKR_KEY_TYPE_INCONSISTENT',
      'CKR_KEY_FUNCTION_NOT_PERMITTED',
      'CKR_KEY_NOT_WRAPPABLE',
      'CKR_KEY_UNEXTRACTABLE',
      'CKR_DOMAIN_PARAMS_INVALID',
      'CKR_DATA_INVALID',
      'CKR_DATA_LEN_RANGE',
      'CKR_ENCRYPTED_DATA_INVALID',
      'CKR_ENCRYPTED_DATA_LEN_RANGE',
      'CKR_SIGNATURE_INVALID',
      'CKR_SIGNATURE_LEN_RANGE',
      'CKR_WRAPPED_KEY_INVALID',
      'CKR_WRAPPED_KEY_LEN_RANGE',
      'CKR_WRAPPING_KEY_HANDLE_INVALID',
      'CKR_WRAPPING_KEY_SIZE_RANGE',
      'CKR_WRAPPING_KEY_TYPE_INCONSISTENT',
      'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
      'CKR_UNWRAPPING_KEY_SIZE_RANGE',
      'CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT',
      'CKR_ACTION_PROHIBITED',
      'CKR_ARGUMENTS_BAD',
      'CKR_BUFFER_TOO_SMALL',
      'CKR_PUBLIC_KEY_INVALID',
    ],
  ],
  [
    InvalidStateError,
    [
      'CKR_OPERATION_ACTIVE',
      'CKR_OPERATION_NOT_INITIALIZED',
      'CKR_SESSION_READ_ONLY',
      'CKR_SESSION_READ_ONLY_EXISTS',
      'CKR_SESSION_READ_WRITE_SO_EXISTS',
      'CKR_TOKEN_WRITE_PROTECTED',
      'CKR_KEY_CHANGED',
      'CKR_KEY_NEEDED',
      'CKR_KEY_NOT_NEEDED',
      'CKR_KEY_INDIGESTIBLE',
      'CKR_USER_ALREADY_LOGGED_IN',
      'CKR_CRYPTOKI_ALREADY_INITIALIZED',
    ],
  ],
  [
    UnavailableError,
    [
      // A token's unexplained failure is retried a bounded number of times: every lifecycle call is
      // idempotent per key id and version, so a repeat finds what a failed attempt made.
      'CKR_GENERAL_ERROR',
      'CKR_DEVICE_ERROR',
      'CKR_DEVICE_MEMORY',
      'CKR_DEVICE_REMOVED',
      'CKR_HOST_MEMORY',
      'CKR_TOKEN_NOT_PRESENT',
      'CKR_TOKEN_NOT_RECOGNIZED',
      'CKR_SLOT_ID_INVALID',
      'CKR_SESSION_COUNT',
      'CKR_SESSION_CLOSED',
      'CKR_SESSION_HANDLE_INVALID',
      'CKR_CRYPTOKI_NOT_INITIALIZED',
      'CKR_FUNCTION_FAILED',
      'CKR_FUNCTION_CANCELED',
      'CKR_CANT_LOCK',
      'CKR_MUTEX_BAD',
      'CKR_MUTEX_NOT_LOCKED',
    ],
  ],
];

const CLASS_BY_NAME: ReadonlyMap<string, ErrorClass> = new Map(
  CLASS_BY_CKR.flatMap(([errorClass, names]) =>
    names.map((name): [string, ErrorClass] => [name, errorClass]),
  ),
);

/**
 * Maps any error thrown by a pkcs11js call to the provider error hierarchy. The message names
 * the PKCS#11 function and the CKR_* value, for example `C_Login failed: CKR_PIN_INCORRECT (0xa0)`.
 * `operation` names the call when pkcs11js does not. Provider errors pass through unchanged.
 */
export function mapPkcs11Error(error: unknown, operation: string): ProviderError {
  if (error instanceof ProviderError) {
    return error;
  }

  const code = ckrCode(error);
  if (code === undefined) {
    const detail = error instanceof Error ? error.message : String(error);
    return new ProviderError(`${operation} failed: ${detail}`, {
      provider: PROVIDER,
      cause: error,
      code: 'internal',
      retryable: false,
    });
  }

  // pkcs11js names the PKCS#11 function on most synchronous calls only, so `operation` is the fallback.
  const method = (error as { method?: unknown }).method;
  const functionName = typeof method === 'string' && method !== '' ? method : operation;
  const name = ckrName(code);
  const message = `${functionName} failed: ${name} (0x${code.toString(16)})`;
  const ErrorClass = CLASS_BY_NAME.get(name);
  if (ErrorClass === undefined) {
    return new ProviderError(message, {
      provider: PROVIDER,
      cause: error,
      code: 'internal',
      retryable: false,
    });
  }
  return new ErrorClass(message, { provider: PROVIDER, cause: error });
}
