export {
  RECORD_ID_HEADER,
  SCHEMA_VERSION_HEADER,
  SiemProducer,
  type SiemProducerOptions,
} from './producer.ts';
export { runKafkaSink, type KafkaSinkOptions } from './sink.ts';
