/**
 * M13 mqtt-packet 9's parser `_parseProperties` (parser.js), replaced on each connection's parser
 * by a copy that keeps what it returns for every well-formed property section and differs in
 * two places (both found by the MQTT 5 fuzzer, issue 11):
 *
 * - a property that comes again is an array whatever its first value: the original tests the
 *   first value's truthiness (`if (result[name])`), so a first copy of 0, '' or false was
 *   silently replaced by the second, and limits/packet-check.ts could not see the repetition
 *   (a Protocol Error for every property but User Property, MQTT 5.0 §2.2.2.2); for User
 *   Properties (which may repeat, in order [MQTT-3.3.2-18]) a first value '' was lost.
 * - a User Property whose name or value is not a well-formed UTF-8 string (the strict
 *   `_parseString` of seam/mqtt-parser.ts returns null, without moving past its bytes) makes the
 *   packet malformed [MQTT-1.5.4-1] at once: the parser's error, so the connection is closed,
 *   counted as a malformed packet. The original went on reading from the wrong place: the name
 *   became the key "null", its bytes were read again as the value, and what followed could pass
 *   for more properties. Any other property value that comes back null (a string or binary
 *   field that is not well-formed or runs past the packet) stops the parse the same way,
 *   instead of being read on from the wrong place.
 *
 * Reads `_parseVarByteNum`, `_parseByte`, `_parseByType`, `_pos`, `_list` (bl's `get` and `length`), `_emitError` and the module's
 * `propertiesCodes` / `propertiesTypes` tables (mqtt-packet/constants.js), as the original does.
 * Contract: test/seam/contract-parse-props.test.ts. Upstream: could replace parser.js's own
 * (no upstream issue found for either).
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const constants = require('mqtt-packet/constants.js') as {
  propertiesCodes: Record<number, string>
  propertiesTypes: Record<string, string>
}

interface Pair {
  name: string | null
  value: string | null
}
interface PropsParser {
  _pos: number
  /** the parser's bl BufferList: `get(i)` is the byte at i, no Buffer made (its readUInt8 slices one) */
  _list: { length: number; get(index: number): number | undefined }
  _parseVarByteNum(): number | false
  _parseByte(): number
  _parseByType(type: string): unknown
  _emitError(err: Error): void
}

const hasOwn = Object.prototype.hasOwnProperty

/** `value` added under `key` of `into`: the value, or an array of them in the order they came */
function add(into: Record<string, unknown>, key: string, value: unknown): void {
  if (!hasOwn.call(into, key)) into[key] = value
  else if (Array.isArray(into[key])) (into[key] as unknown[]).push(value)
  else into[key] = [into[key], value]
}

/** the parser's error (the connection is closed); false, as parser.js returns after its own */
function fail(p: PropsParser, message: string): false {
  p._emitError(new Error(message))
  return false
}

/**
 * what an empty section (Property Length 0) returns: one shared empty object, frozen. Every caller
 * in parser.js only asks whether the result has a property (`Object.getOwnPropertyNames(r).length`)
 * and keeps it only then (contract M13), so no packet ever holds it; an MQTT 5 PUBLISH or ack
 * without properties (most of them) costs no object (issue 11)
 */
const EMPTY: Record<string, unknown> = Object.freeze({})

/** parser.js _parseProperties, strict (see above): the properties by name, or false after the parser's error */
export function strictParseProperties(this: PropsParser): Record<string, unknown> | false {
  // Property Length 0 (a one-byte Variable Byte Integer): read in place, where _parseVarByteNum
  // slices a Buffer for the byte (bl's readUInt8). At _pos 0 it does not move _pos: never the
  // case for a property section (after a packet id, topic or reason code), left to it all the same
  const pos = this._pos
  if (pos > 0 && pos < this._list.length && this._list.get(pos) === 0) {
    this._pos = pos + 1
    return EMPTY
  }
  const length = this._parseVarByteNum()
  if (length === 0) return EMPTY
  const end = this._pos + (length as number)
  const result: Record<string, unknown> = {}
  while (this._pos < end) {
    const type = this._parseByte()
    if (!type) return fail(this, 'Cannot parse property code type')
    const name = constants.propertiesCodes[type]
    if (!name) return fail(this, 'Unknown property')
    const value = this._parseByType(constants.propertiesTypes[name]!)
    if (name === 'userProperties') {
      const pair = value as Pair
      if (pair.name === null || pair.value === null) return fail(this, 'malformed packet: a User Property name or value that is not well-formed UTF-8 or holds U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]')
      const users = (result.userProperties ??= Object.create(null)) as Record<string, unknown>
      add(users, pair.name, pair.value)
    } else {
      if (value === null) return fail(this, `malformed packet: property ${name} not well-formed [MQTT-1.5.4-1]`)
      add(result, name, value)
    }
  }
  return result
}
