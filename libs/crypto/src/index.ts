// Barrel of @app/crypto: import this library only through '@app/crypto'.
export {};
