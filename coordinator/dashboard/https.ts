/**
 * The dashboard's own certificate (`--https-cert`, `--https-key`), read and checked before
 * anything starts, so that a bad file is one line naming it rather than a server that fails
 * on its first connection.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { UsageError, describeError, fileErrorReason } from '../../shared/errors.js';
import type { HttpsFiles } from './server.js';

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${fileErrorReason(error) ?? describeError(error)}`, { cause: error });
  }
}

/**
 * Reads a PEM certificate (chain) and its unencrypted PEM private key.
 * @throws UsageError naming the flag and the file when either is unreadable, is not what it
 *   should be, or the key is not the certificate's
 */
export function readHttpsFiles(certPath: string, keyPath: string): HttpsFiles {
  const cert = readPem(certPath, '--https-cert');
  const key = readPem(keyPath, '--https-key');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new UsageError(`--https-cert: ${certPath} holds no PEM certificate`, { cause: error });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new UsageError(`--https-key: ${keyPath} holds no unencrypted PEM private key`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== certificate.publicKey.asymmetricKeyType || !certificate.checkPrivateKey(privateKey)) {
    throw new UsageError(`--https-key: ${keyPath} is not the private key of the certificate in ${certPath}`);
  }
  try {
    // Whatever else TLS would refuse (a chain it cannot load), said now.
    createSecureContext({ cert, key });
  } catch (error) {
    throw new UsageError(`--https-cert: ${certPath}: ${describeError(error)}`, { cause: error });
  }
  return { cert, key };
}
