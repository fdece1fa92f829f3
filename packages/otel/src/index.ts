export { XInstrumentation, type XInstrumentationConfig } from './instrumentation';
export { OPERATIONS, EVENTS } from './channels';
