/** Cluster events over NATS (docs/EVENTS.md): the public surface of src/events. */
export {
  EVENT_KINDS, EVENT_FORMAT_VERSION, POSITION_ZERO, comparePositions, positionText, parsePosition, checkClusterName,
  eventSubject, allEventsSubject,
  type ClusterEvent, type EventKind, type EventPosition,
} from './event-types';
export { EventHistory, type HistoryPage } from './event-history';
export { NatsPublisher, type EventSink, type NatsPublisherOptions } from './nats-publisher';
export { ProcessEvents, type ProcessEventsOptions } from './process-events';
