/**
 * The shared subscriptions' listener for every message (seam onEveryMessage, a '#' listener on the
 * broker's emitter) costs on every message of the node, group or not: one more listener matched
 * and called per message. So it is on only while this node knows of a group anywhere in the
 * cluster (ShareDelivery.onActive), and for UNHOOK_AFTER_MS after the last member left: a message
 * another node picked a member here for, before it heard that the member left, may still be on
 * its way (without the listener, its in-flight record would wait for the member's connection to
 * end instead of being sent on at once, delivery.ts `gone`).
 *
 * No message is missed when a group starts: a join applies the member to this node's view
 * synchronously, before it is written to Redis (store.ts `join`), and the view reports its first
 * group synchronously, so the listener is on before any node can pick a member here.
 */
import type { Aedes } from 'aedes'
import type { Logger } from '../log.js'
import { onEveryMessage } from '../seam/index.js'

/** how long the listener stays on after the last group is gone (longer than a bus batch takes between nodes) */
export const UNHOOK_AFTER_MS = 5000

export interface MessageHook {
  /** a group exists (on), or none does any more (off, after UNHOOK_AFTER_MS) */
  set(on: boolean): void
  close(): void
}

export function switchedMessageHook(broker: Aedes, listener: (message: unknown, cb: () => void) => void, log: Logger): MessageHook {
  /** the remover while the listener is on, or while its removal is under way */
  let stop: ((done?: () => void) => void) | undefined
  let removing = false
  let wanted = false
  let closed = false
  let timer: NodeJS.Timeout | undefined
  const apply = (): void => {
    if (wanted && !stop) {
      stop = onEveryMessage(broker, listener)
      log.info('shared subscriptions: a group exists, the message hook is on')
    } else if (!wanted && stop && !removing) {
      removing = true
      // wanted again meanwhile: on again in the turn it came off (seam: no message in between)
      stop(() => {
        removing = false
        stop = undefined
        if (!wanted) log.info('shared subscriptions: no group any more, the message hook is off')
        apply()
      })
    }
  }
  return {
    set(on) {
      // the store may still report changes while the node closes
      if (closed) return
      clearTimeout(timer)
      timer = undefined
      if (on) {
        wanted = true
        apply()
      } else if (wanted) {
        timer = setTimeout(() => {
          wanted = false
          apply()
        }, UNHOOK_AFTER_MS)
        timer.unref()
      }
    },
    close() {
      closed = true
      clearTimeout(timer)
      wanted = false
      apply()
    },
  }
}
