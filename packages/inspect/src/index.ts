export { Inspector, type InspectorOptions, type Snapshot, type Described } from './inspector';
export { serveInspector, type ServeOptions, type InspectorServer } from './server';
export { PACKAGE_NAMES, type PackageName, type ResourceRef, type Action } from './packages';
