// Barrel of @app/lkh: import this library only through '@app/lkh'.
export {};
