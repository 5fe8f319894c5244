// Barrel of @app/gkm: import this library only through '@app/gkm'.
export {};
