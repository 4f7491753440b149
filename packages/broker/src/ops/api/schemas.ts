/** JSON schemas shared by the API routes (they also make the OpenAPI document, ops/api/index.ts). */
import { errorSchema } from '../http.js'

export { errorSchema }

/** error answers every admin route may give */
export const adminErrors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema } as const

export const pageQuery = {
  offset: { type: 'integer', minimum: 0, default: 0, description: 'items to skip' },
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'items per page' },
} as const

/** a page of items: `total` matching, `nodes_missing` nodes that did not answer in time */
export function pageOf(item: object): object {
  return {
    type: 'object',
    properties: {
      total: { type: 'integer' },
      offset: { type: 'integer' },
      limit: { type: 'integer' },
      nodes_missing: { type: 'integer', description: 'live nodes that did not answer in time (their items are missing)' },
      items: { type: 'array', items: item },
    },
    required: ['total', 'offset', 'limit', 'items'],
  }
}

export const idParam = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1 } },
  required: ['id'],
} as const

export const bearer = [{ bearerAuth: [] }]
