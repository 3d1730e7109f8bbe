/**
 * The little XML S3 speaks: answers are built from escaped text (never from a library
 * that could be fed a doctype), and the two request documents we read (Delete,
 * CreateBucketConfiguration) are picked apart by their few elements with bounded input.
 */
import { S3Error } from './s3-error';

export const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
export const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** Escapes text for an element; characters XML 1.0 cannot carry become character references. */
export function esc(text: string): string {
  return text.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case '"': return '&quot;';
      case "'": return '&apos;';
      default: return `&#x${c.charCodeAt(0).toString(16)};`;
    }
  });
}

/** `<name>text</name>`, or nothing when text is undefined. */
export function el(name: string, text: string | number | boolean | undefined): string {
  return text === undefined ? '' : `<${name}>${esc(String(text))}</${name}>`;
}

export function errorXml(code: string, message: string, resource: string, requestId: string, extra: Record<string, string>): string {
  return XML_HEAD + '<Error>' + el('Code', code) + el('Message', message)
    + Object.entries(extra).map(([k, v]) => el(k, v)).join('')
    + el('Resource', resource) + el('RequestId', requestId) + '</Error>';
}

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    if (e === 'amp') return '&';
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const cp = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    if (cp > 0x10ffff) throw new S3Error('MalformedXML', 400, 'A character reference is out of range');
    return String.fromCodePoint(cp);
  });
}

/** The Delete document of DeleteObjects: its keys and Quiet flag. */
export function parseDeleteRequest(body: string, maxKeys: number): { keys: string[]; quiet: boolean } {
  if (/<!DOCTYPE|<!ENTITY/i.test(body) || !/<Delete[\s>]/.test(body)) throw new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.');
  const keys: string[] = [];
  for (const m of body.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(m[1]!);
    if (!key) throw new S3Error('MalformedXML', 400, 'An Object has no Key');
    keys.push(unescapeXml(key[1]!));
    if (keys.length > maxKeys) throw new S3Error('MalformedXML', 400, `At most ${maxKeys} keys may be deleted in one request`);
  }
  if (keys.length === 0) throw new S3Error('MalformedXML', 400, 'The Delete document names no Object');
  return { keys, quiet: /<Quiet>\s*true\s*<\/Quiet>/i.test(body) };
}
