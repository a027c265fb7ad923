// The few WebAssembly globals tally uses (Node has them; TypeScript's ES lib and @types/node 20
// do not declare them, and the DOM lib would declare far more than Node has).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: BufferSource);
  }
  class Memory {
    readonly buffer: ArrayBuffer;
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
}
